import {
  migratePrefixedTables,
  type PrefixedMigration,
} from '../../storage/prefixed-migrations.js';
import type { Database } from 'better-sqlite3';
import { openDatabase } from '../../storage/database.js';
import { AcmeError, AcmeErrorCode } from './errors.js';
import type { ChallengeType } from './identifiers.js';
import type { AcmeIdentifier, ProblemDocument } from './problems.js';

/**
 * The ACME server's state in SQLite: accounts, orders, authorizations, challenges and the
 * certificates issued through it, so a restart keeps them (nonces are the one thing kept in
 * memory, see nonces.ts). Tables carry an `acme_` prefix and their own version table, so they
 * can share a file with the node store. Applied migrations are never edited.
 */

export type AccountStatus = 'valid' | 'deactivated';
export type OrderStatus = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';
export type AuthorizationStatus =
  'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
export type ChallengeStatus = 'pending' | 'processing' | 'valid' | 'invalid';

export interface AccountRecord {
  readonly id: string;
  readonly jwk: Readonly<Record<string, string>>;
  readonly thumbprint: string;
  readonly status: AccountStatus;
  readonly contact: readonly string[];
  readonly termsOfServiceAgreed: boolean;
  readonly createdMs: number;
}

export interface OrderRecord {
  readonly id: string;
  readonly accountId: string;
  readonly status: OrderStatus;
  readonly expiresMs: number;
  readonly identifiers: readonly AcmeIdentifier[];
  readonly error: ProblemDocument | null;
  readonly csr: Uint8Array | null;
  readonly certificateId: string | null;
  readonly createdMs: number;
  /** RFC 9773 §5: the certID of the certificate this order replaces, as the client sent it. */
  readonly replaces: string | null;
}

export interface AuthorizationRecord {
  readonly id: string;
  readonly accountId: string;
  readonly orderId: string;
  readonly position: number;
  readonly identifier: AcmeIdentifier;
  readonly wildcard: boolean;
  readonly status: AuthorizationStatus;
  readonly expiresMs: number;
}

export interface ChallengeRecord {
  readonly id: string;
  readonly authorizationId: string;
  readonly type: ChallengeType;
  readonly token: string;
  readonly status: ChallengeStatus;
  readonly validatedMs: number | null;
  readonly error: ProblemDocument | null;
}

export interface CertificateRecord {
  readonly id: string;
  readonly accountId: string;
  readonly orderId: string;
  readonly serialHex: string;
  /** SHA-256 of the leaf DER, hex. */
  readonly fingerprint: string;
  readonly leafDer: Uint8Array;
  /** The leaf and its chain as served (`application/pem-certificate-chain`). */
  readonly chainPem: string;
  readonly revokedMs: number | null;
  readonly revocationReason: number | null;
}

const MIGRATIONS: readonly PrefixedMigration[] = [
  {
    version: 1,
    name: 'accounts, orders, authorizations, challenges, certificates',
    sql: `
      CREATE TABLE acme_account (
        id TEXT PRIMARY KEY,
        jwk TEXT NOT NULL,
        thumbprint TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('valid', 'deactivated')),
        contact TEXT NOT NULL,
        tos_agreed INTEGER NOT NULL CHECK (tos_agreed IN (0, 1)),
        created_ms INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE acme_order (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES acme_account (id),
        status TEXT NOT NULL
          CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
        expires_ms INTEGER NOT NULL,
        identifiers TEXT NOT NULL,
        error TEXT,
        csr BLOB,
        certificate_id TEXT,
        created_ms INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX acme_order_by_account ON acme_order (account_id, created_ms);
      CREATE INDEX acme_order_by_status ON acme_order (status);

      CREATE TABLE acme_authz (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES acme_account (id),
        order_id TEXT NOT NULL REFERENCES acme_order (id),
        position INTEGER NOT NULL,
        identifier_type TEXT NOT NULL CHECK (identifier_type IN ('dns', 'ip')),
        identifier_value TEXT NOT NULL,
        wildcard INTEGER NOT NULL CHECK (wildcard IN (0, 1)),
        status TEXT NOT NULL
          CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
        expires_ms INTEGER NOT NULL,
        UNIQUE (order_id, position)
      ) STRICT;
      CREATE INDEX acme_authz_by_account ON acme_authz (account_id, identifier_type, identifier_value);

      CREATE TABLE acme_challenge (
        id TEXT PRIMARY KEY,
        authz_id TEXT NOT NULL REFERENCES acme_authz (id),
        type TEXT NOT NULL CHECK (type IN ('http-01', 'dns-01', 'tls-alpn-01')),
        token TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
        validated_ms INTEGER,
        error TEXT
      ) STRICT;
      CREATE INDEX acme_challenge_by_authz ON acme_challenge (authz_id);
      CREATE INDEX acme_challenge_by_status ON acme_challenge (status);

      CREATE TABLE acme_certificate (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES acme_account (id),
        order_id TEXT NOT NULL UNIQUE REFERENCES acme_order (id),
        serial_hex TEXT NOT NULL UNIQUE,
        fingerprint TEXT NOT NULL UNIQUE,
        leaf_der BLOB NOT NULL,
        chain_pem TEXT NOT NULL,
        revoked_ms INTEGER,
        revocation_reason INTEGER
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: 'the consensus transaction each finalized order was sent as',
    sql: `
      CREATE TABLE acme_issuance (
        order_id TEXT PRIMARY KEY,
        tx_hash BLOB NOT NULL CHECK (length(tx_hash) = 32)
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'multi-perspective validation attestations of each authorization',
    sql: `
      CREATE TABLE acme_dcv (
        authz_id TEXT NOT NULL REFERENCES acme_authz (id),
        validator BLOB NOT NULL CHECK (length(validator) = 32),
        attestation BLOB NOT NULL,
        PRIMARY KEY (authz_id, validator)
      ) STRICT;
    `,
  },
  {
    version: 4,
    name: 'the certificate an order replaces (RFC 9773 replaces)',
    // At most one order that is not invalid replaces a certificate (alreadyReplaced otherwise).
    sql: `
      ALTER TABLE acme_order ADD COLUMN replaces TEXT;
      CREATE UNIQUE INDEX acme_order_by_replaces ON acme_order (replaces)
        WHERE replaces IS NOT NULL AND status != 'invalid';
    `,
  },
  {
    version: 5,
    name: "each account's pending authorizations (the newOrder limit)",
    sql: `
      CREATE INDEX acme_authz_by_account_status ON acme_authz (account_id, status, expires_ms);
    `,
  },
];

export const ACME_SCHEMA_VERSION = MIGRATIONS.length;

function migrateAcmeSchema(db: Database): void {
  migratePrefixedTables(
    db,
    'acme',
    MIGRATIONS,
    (message, detail) => new AcmeError(AcmeErrorCode.STORE_SCHEMA_MISMATCH, message, detail),
  );
}

interface AccountRow {
  id: string;
  jwk: string;
  thumbprint: string;
  status: AccountStatus;
  contact: string;
  tos_agreed: number;
  created_ms: number;
}
interface OrderRow {
  id: string;
  account_id: string;
  status: OrderStatus;
  expires_ms: number;
  identifiers: string;
  error: string | null;
  csr: Buffer | null;
  certificate_id: string | null;
  created_ms: number;
  replaces: string | null;
}
interface AuthzRow {
  id: string;
  account_id: string;
  order_id: string;
  position: number;
  identifier_type: 'dns' | 'ip';
  identifier_value: string;
  wildcard: number;
  status: AuthorizationStatus;
  expires_ms: number;
}
interface ChallengeRow {
  id: string;
  authz_id: string;
  type: ChallengeType;
  token: string;
  status: ChallengeStatus;
  validated_ms: number | null;
  error: string | null;
}
interface CertificateRow {
  id: string;
  account_id: string;
  order_id: string;
  serial_hex: string;
  fingerprint: string;
  leaf_der: Buffer;
  chain_pem: string;
  revoked_ms: number | null;
  revocation_reason: number | null;
}

const account = (row: AccountRow): AccountRecord => ({
  id: row.id,
  jwk: JSON.parse(row.jwk) as Record<string, string>,
  thumbprint: row.thumbprint,
  status: row.status,
  contact: JSON.parse(row.contact) as string[],
  termsOfServiceAgreed: row.tos_agreed === 1,
  createdMs: row.created_ms,
});
const order = (row: OrderRow): OrderRecord => ({
  id: row.id,
  accountId: row.account_id,
  status: row.status,
  expiresMs: row.expires_ms,
  identifiers: JSON.parse(row.identifiers) as AcmeIdentifier[],
  error: row.error === null ? null : (JSON.parse(row.error) as ProblemDocument),
  csr: row.csr === null ? null : new Uint8Array(row.csr),
  certificateId: row.certificate_id,
  createdMs: row.created_ms,
  replaces: row.replaces,
});
const authz = (row: AuthzRow): AuthorizationRecord => ({
  id: row.id,
  accountId: row.account_id,
  orderId: row.order_id,
  position: row.position,
  identifier: { type: row.identifier_type, value: row.identifier_value },
  wildcard: row.wildcard === 1,
  status: row.status,
  expiresMs: row.expires_ms,
});
const challenge = (row: ChallengeRow): ChallengeRecord => ({
  id: row.id,
  authorizationId: row.authz_id,
  type: row.type,
  token: row.token,
  status: row.status,
  validatedMs: row.validated_ms,
  error: row.error === null ? null : (JSON.parse(row.error) as ProblemDocument),
});
const certificate = (row: CertificateRow): CertificateRecord => ({
  id: row.id,
  accountId: row.account_id,
  orderId: row.order_id,
  serialHex: row.serial_hex,
  fingerprint: row.fingerprint,
  leafDer: new Uint8Array(row.leaf_der),
  chainPem: row.chain_pem,
  revokedMs: row.revoked_ms,
  revocationReason: row.revocation_reason,
});

export interface NewOrder {
  readonly order: Omit<OrderRecord, 'error' | 'csr' | 'certificateId' | 'replaces'> & {
    readonly replaces?: string;
  };
  readonly authorizations: ReadonlyArray<{
    readonly authorization: AuthorizationRecord;
    readonly challenges: readonly ChallengeRecord[];
  }>;
}

/** Typed access to the acme_ tables of one SQLite connection. */
export class AcmeStore {
  private constructor(
    readonly db: Database,
    private readonly ownsDatabase: boolean,
  ) {
    migrateAcmeSchema(db);
  }

  /** Opens (or creates) a store file of its own (WAL, synchronous=FULL, see src/storage). */
  static open(path: string): AcmeStore {
    const db = openDatabase(path);
    try {
      return new AcmeStore(db, true);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /**
   * The transaction an order's finalization was sent as (the issuer's request), so that after a
   * restart a resumed order waits for that transaction instead of sending another; null if none.
   */
  issuanceOf(orderId: string): Uint8Array | null {
    const row = this.db
      .prepare('SELECT tx_hash FROM acme_issuance WHERE order_id = ?')
      .get(orderId) as { tx_hash: Buffer } | undefined;
    return row === undefined ? null : new Uint8Array(row.tx_hash);
  }

  /** Records (or replaces) the transaction an order's finalization was sent as. */
  recordIssuance(orderId: string, txHash: Uint8Array): void {
    this.db
      .prepare(
        'INSERT INTO acme_issuance (order_id, tx_hash) VALUES (?, ?) ' +
          'ON CONFLICT (order_id) DO UPDATE SET tx_hash = excluded.tx_hash',
      )
      .run(orderId, Buffer.from(txHash));
  }

  /** Forgets an order's transaction (it failed: a retry sends a new one). */
  forgetIssuance(orderId: string): void {
    this.db.prepare('DELETE FROM acme_issuance WHERE order_id = ?').run(orderId);
  }

  /**
   * Records the multi-perspective validation attestations of an authorization (docs/acme.md,
   * "Multi-perspective validation"), one per validator; a validator's later one replaces it.
   */
  recordAttestations(
    authorizationId: string,
    attestations: ReadonlyArray<{ readonly validator: Uint8Array; readonly bytes: Uint8Array }>,
  ): void {
    const insert = this.db.prepare(
      'INSERT INTO acme_dcv (authz_id, validator, attestation) VALUES (?, ?, ?) ' +
        'ON CONFLICT (authz_id, validator) DO UPDATE SET attestation = excluded.attestation',
    );
    for (const { validator, bytes } of attestations) {
      insert.run(authorizationId, Buffer.from(validator), Buffer.from(bytes));
    }
  }

  /** The attestations recorded for an authorization, by validator key. */
  attestationsOfAuthorization(authorizationId: string): Uint8Array[] {
    return (
      this.db
        .prepare('SELECT attestation FROM acme_dcv WHERE authz_id = ? ORDER BY validator')
        .pluck()
        .all(authorizationId) as Buffer[]
    ).map((row) => new Uint8Array(row));
  }

  /** Uses the acme_ tables of an already open connection (e.g. the node store's file). */
  static attach(db: Database): AcmeStore {
    return new AcmeStore(db, false);
  }

  close(): void {
    if (this.ownsDatabase && this.db.open) this.db.close();
  }

  transaction<T>(body: () => T): T {
    return this.db.transaction(body).immediate();
  }

  accountById(id: string): AccountRecord | undefined {
    const row = this.db.prepare('SELECT * FROM acme_account WHERE id = ?').get(id) as
      AccountRow | undefined;
    return row === undefined ? undefined : account(row);
  }

  accountByThumbprint(thumbprint: string): AccountRecord | undefined {
    const row = this.db
      .prepare('SELECT * FROM acme_account WHERE thumbprint = ?')
      .get(thumbprint) as AccountRow | undefined;
    return row === undefined ? undefined : account(row);
  }

  insertAccount(record: AccountRecord): void {
    this.db
      .prepare(
        'INSERT INTO acme_account (id, jwk, thumbprint, status, contact, tos_agreed, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        record.id,
        JSON.stringify(record.jwk),
        record.thumbprint,
        record.status,
        JSON.stringify(record.contact),
        record.termsOfServiceAgreed ? 1 : 0,
        record.createdMs,
      );
  }

  updateAccount(id: string, change: { contact?: readonly string[]; status?: AccountStatus }): void {
    if (change.contact !== undefined) {
      this.db
        .prepare('UPDATE acme_account SET contact = ? WHERE id = ?')
        .run(JSON.stringify(change.contact), id);
    }
    if (change.status !== undefined) {
      this.db.prepare('UPDATE acme_account SET status = ? WHERE id = ?').run(change.status, id);
    }
  }

  changeAccountKey(id: string, jwk: Readonly<Record<string, string>>, thumbprint: string): void {
    this.db
      .prepare('UPDATE acme_account SET jwk = ?, thumbprint = ? WHERE id = ?')
      .run(JSON.stringify(jwk), thumbprint, id);
  }

  insertOrder(input: NewOrder): void {
    const o = input.order;
    this.transaction(() => {
      this.db
        .prepare(
          'INSERT INTO acme_order (id, account_id, status, expires_ms, identifiers, created_ms, replaces) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(
          o.id,
          o.accountId,
          o.status,
          o.expiresMs,
          JSON.stringify(o.identifiers),
          o.createdMs,
          o.replaces ?? null,
        );
      const insertAuthz = this.db.prepare(
        'INSERT INTO acme_authz (id, account_id, order_id, position, identifier_type, identifier_value, wildcard, status, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      );
      const insertChallenge = this.db.prepare(
        'INSERT INTO acme_challenge (id, authz_id, type, token, status) VALUES (?, ?, ?, ?, ?)',
      );
      for (const { authorization: a, challenges } of input.authorizations) {
        insertAuthz.run(
          a.id,
          a.accountId,
          a.orderId,
          a.position,
          a.identifier.type,
          a.identifier.value,
          a.wildcard ? 1 : 0,
          a.status,
          a.expiresMs,
        );
        for (const c of challenges) insertChallenge.run(c.id, a.id, c.type, c.token, c.status);
      }
    });
  }

  orderById(id: string): OrderRecord | undefined {
    const row = this.db.prepare('SELECT * FROM acme_order WHERE id = ?').get(id) as
      OrderRow | undefined;
    return row === undefined ? undefined : order(row);
  }

  /**
   * One page of the account's orders that are not `invalid`, newest first (insertion order
   * breaks ties of one millisecond): at most `limit`, those older than the order `after` when
   * given (the previous page's last; it must be the account's), and whether older ones follow.
   * Keyset paging: orders made meanwhile neither shift nor repeat the later pages. Undefined
   * when `after` is not an order of the account.
   */
  orderPageOfAccount(
    accountId: string,
    limit: number,
    after?: string,
  ): { readonly ids: string[]; readonly more: boolean } | undefined {
    let ids: string[];
    if (after === undefined) {
      ids = this.db
        .prepare(
          "SELECT id FROM acme_order WHERE account_id = ? AND status != 'invalid' ORDER BY created_ms DESC, rowid DESC LIMIT ?",
        )
        .pluck()
        .all(accountId, limit + 1) as string[];
    } else {
      const mark = this.db
        .prepare('SELECT created_ms, rowid FROM acme_order WHERE id = ? AND account_id = ?')
        .get(after, accountId) as { created_ms: number; rowid: number } | undefined;
      if (mark === undefined) return undefined;
      ids = this.db
        .prepare(
          "SELECT id FROM acme_order WHERE account_id = ? AND status != 'invalid' AND (created_ms, rowid) < (?, ?) ORDER BY created_ms DESC, rowid DESC LIMIT ?",
        )
        .pluck()
        .all(accountId, mark.created_ms, mark.rowid, limit + 1) as string[];
    }
    return { ids: ids.slice(0, limit), more: ids.length > limit };
  }

  /** Orders that are not `invalid` and replace the certificate `certId` names (RFC 9773 §5). */
  liveOrdersReplacing(certId: string): OrderRecord[] {
    return (
      this.db
        .prepare("SELECT * FROM acme_order WHERE replaces = ? AND status != 'invalid'")
        .all(certId) as OrderRow[]
    ).map(order);
  }

  /** The ids of `accountId`'s orders in `status` (for account deactivation). */
  orderIdsOfAccountInStatus(accountId: string, status: OrderStatus): string[] {
    return this.db
      .prepare('SELECT id FROM acme_order WHERE account_id = ? AND status = ?')
      .pluck()
      .all(accountId, status) as string[];
  }

  orderIdsInStatus(status: OrderStatus): string[] {
    return this.db
      .prepare('SELECT id FROM acme_order WHERE status = ?')
      .pluck()
      .all(status) as string[];
  }

  updateOrder(
    id: string,
    change: {
      status: OrderStatus;
      error?: ProblemDocument | null;
      csr?: Uint8Array;
      certificateId?: string;
    },
  ): void {
    this.db.prepare('UPDATE acme_order SET status = ? WHERE id = ?').run(change.status, id);
    if (change.error !== undefined) {
      this.db
        .prepare('UPDATE acme_order SET error = ? WHERE id = ?')
        .run(change.error === null ? null : JSON.stringify(change.error), id);
    }
    if (change.csr !== undefined) {
      this.db.prepare('UPDATE acme_order SET csr = ? WHERE id = ?').run(change.csr, id);
    }
    if (change.certificateId !== undefined) {
      this.db
        .prepare('UPDATE acme_order SET certificate_id = ? WHERE id = ?')
        .run(change.certificateId, id);
    }
  }

  authorizationById(id: string): AuthorizationRecord | undefined {
    const row = this.db.prepare('SELECT * FROM acme_authz WHERE id = ?').get(id) as
      AuthzRow | undefined;
    return row === undefined ? undefined : authz(row);
  }

  authorizationsOfOrder(orderId: string): AuthorizationRecord[] {
    return (
      this.db
        .prepare('SELECT * FROM acme_authz WHERE order_id = ? ORDER BY position')
        .all(orderId) as AuthzRow[]
    ).map(authz);
  }

  /** Valid authorizations of `accountId` for an identifier (for revocation by authorization). */
  validAuthorizationsFor(
    accountId: string,
    identifier: AcmeIdentifier,
    nowMs: number,
  ): AuthorizationRecord[] {
    return (
      this.db
        .prepare(
          "SELECT * FROM acme_authz WHERE account_id = ? AND identifier_type = ? AND identifier_value = ? AND status = 'valid' AND expires_ms > ?",
        )
        .all(accountId, identifier.type, identifier.value, nowMs) as AuthzRow[]
    ).map(authz);
  }

  /** The ids of `accountId`'s authorizations in `status` (for account deactivation). */
  authorizationIdsOfAccount(accountId: string, status: AuthorizationStatus): string[] {
    return this.db
      .prepare('SELECT id FROM acme_authz WHERE account_id = ? AND status = ?')
      .pluck()
      .all(accountId, status) as string[];
  }

  setAuthorizationStatus(id: string, status: AuthorizationStatus, expiresMs?: number): void {
    this.db.prepare('UPDATE acme_authz SET status = ? WHERE id = ?').run(status, id);
    if (expiresMs !== undefined) {
      this.db.prepare('UPDATE acme_authz SET expires_ms = ? WHERE id = ?').run(expiresMs, id);
    }
  }

  challengeById(id: string): ChallengeRecord | undefined {
    const row = this.db.prepare('SELECT * FROM acme_challenge WHERE id = ?').get(id) as
      ChallengeRow | undefined;
    return row === undefined ? undefined : challenge(row);
  }

  challengesOfAuthorization(authorizationId: string): ChallengeRecord[] {
    return (
      this.db
        .prepare('SELECT * FROM acme_challenge WHERE authz_id = ? ORDER BY rowid')
        .all(authorizationId) as ChallengeRow[]
    ).map(challenge);
  }

  /**
   * The challenges in `status` with the account each belongs to, in the order they were
   * created (so validations resumed after a restart queue oldest first).
   */
  challengesInStatus(status: ChallengeStatus): Array<{ id: string; accountId: string }> {
    return (
      this.db
        .prepare(
          'SELECT c.id AS id, a.account_id AS account_id FROM acme_challenge c ' +
            'JOIN acme_authz a ON a.id = c.authz_id WHERE c.status = ? ORDER BY c.rowid',
        )
        .all(status) as Array<{ id: string; account_id: string }>
    ).map((row) => ({ id: row.id, accountId: row.account_id }));
  }

  /** How many authorizations of `accountId` are pending and not yet expired at `nowMs`. */
  pendingAuthorizationCount(accountId: string, nowMs: number): number {
    return this.db
      .prepare(
        "SELECT count(*) FROM acme_authz WHERE account_id = ? AND status = 'pending' AND expires_ms > ?",
      )
      .pluck()
      .get(accountId, nowMs) as number;
  }

  /**
   * When the `rank`-th (1-based) of the account's pending, unexpired authorizations to expire
   * does so; null when it has fewer than `rank`.
   */
  pendingAuthorizationExpiry(accountId: string, nowMs: number, rank: number): number | null {
    const value = this.db
      .prepare(
        "SELECT expires_ms FROM acme_authz WHERE account_id = ? AND status = 'pending' AND expires_ms > ? ORDER BY expires_ms LIMIT 1 OFFSET ?",
      )
      .pluck()
      .get(accountId, nowMs, rank - 1) as number | undefined;
    return value ?? null;
  }

  updateChallenge(
    id: string,
    change: { status: ChallengeStatus; validatedMs?: number; error?: ProblemDocument },
  ): void {
    this.db
      .prepare(
        'UPDATE acme_challenge SET status = ?, validated_ms = coalesce(?, validated_ms), error = coalesce(?, error) WHERE id = ?',
      )
      .run(
        change.status,
        change.validatedMs ?? null,
        change.error === undefined ? null : JSON.stringify(change.error),
        id,
      );
  }

  insertCertificate(record: CertificateRecord): void {
    this.db
      .prepare(
        'INSERT INTO acme_certificate (id, account_id, order_id, serial_hex, fingerprint, leaf_der, chain_pem) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        record.id,
        record.accountId,
        record.orderId,
        record.serialHex,
        record.fingerprint,
        record.leafDer,
        record.chainPem,
      );
  }

  certificateById(id: string): CertificateRecord | undefined {
    const row = this.db.prepare('SELECT * FROM acme_certificate WHERE id = ?').get(id) as
      CertificateRow | undefined;
    return row === undefined ? undefined : certificate(row);
  }

  /** By serial: lowercase hex without a leading zero byte (as `ParsedCertificate.serialNumber`). */
  certificateBySerial(serialHex: string): CertificateRecord | undefined {
    const row = this.db
      .prepare('SELECT * FROM acme_certificate WHERE serial_hex = ?')
      .get(serialHex) as CertificateRow | undefined;
    return row === undefined ? undefined : certificate(row);
  }

  certificateByFingerprint(fingerprint: string): CertificateRecord | undefined {
    const row = this.db
      .prepare('SELECT * FROM acme_certificate WHERE fingerprint = ?')
      .get(fingerprint) as CertificateRow | undefined;
    return row === undefined ? undefined : certificate(row);
  }

  markRevoked(id: string, revokedMs: number, reason: number): void {
    this.db
      .prepare(
        'UPDATE acme_certificate SET revoked_ms = ?, revocation_reason = ? WHERE id = ? AND revoked_ms IS NULL',
      )
      .run(revokedMs, reason, id);
  }
}
