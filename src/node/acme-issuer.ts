import type { KeyObject } from 'node:crypto';
import { toHex } from '../crypto/bytes.js';
import { derToPem } from '../crypto/x509.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import {
  SEQUENCE_QUERY,
  TX_RESULT_QUERY,
  buildTransaction,
  decodeRecordedTxResult,
  decodeSequence,
} from '../consensus/application/index.js';
import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import {
  AcmeIssuerError,
  AcmeIssuerErrorCode,
  type AcmeIssueRequest,
  type AcmeIssuedCertificate,
  type AcmeIssuer,
  type AcmeRevokeRequest,
} from '../faces/acme/index.js';
import type { TrustBundle } from '../trustchain/ca/bundle.js';
import {
  CA_MODULE_NAME,
  CA_QUERIES,
  buildCaRequestTransaction,
  caRevokeBody,
  certificateChainPem,
  findPublishedCertificate,
  readIntermediates,
  trustBundleInEffect,
} from '../trustchain/ca-module/index.js';
import { certificateSerialOf } from './cert-tools.js';

/**
 * The consensus-backed ACME issuer (docs/acme.md, "In the node"): each finalized order becomes a
 * `ca/request` transaction signed by the node's ACME account key — an account whose genesis
 * `app.ca` grant covers the names the server hands out — admitted to the node's own mempool.
 * The issuer then follows the node's commits (`committed(height)`, called from the node's
 * `commit` event; no polling timer): once the request is committed it waits for the batch to be
 * published and returns the leaf with its issuer's intermediate (from the trust bundle in effect
 * at the publication: an intermediate added after genesis included). A refusal at admission or at
 * execution becomes an `AcmeIssuerError` the server turns into an ACME problem. An order whose
 * wait ran out while its transaction was still pending or committed is followed at each commit
 * and handed back to the server (`onResumable`) once the transaction has moved on.
 */

/** What a submission to the node's mempool answers (MempoolAddResult). */
export type AcmeSubmitResult =
  { readonly ok: true } | { readonly ok: false; readonly code: string; readonly message: string };

export interface ConsensusAcmeIssuerOptions {
  readonly chainId: string;
  readonly stampDifficulty: number;
  /** The ACME account key (Ed25519): the sender of every `ca` transaction of this issuer. */
  readonly accountKey: KeyObject;
  readonly bundle: TrustBundle;
  /** Reads of the node's latest committed state (the node's `app.query`). */
  readonly query: (request: QueryRequest) => QueryResponse;
  /** Admits a transaction from this node (mempool + gossip). */
  readonly submit: (tx: Uint8Array) => Promise<AcmeSubmitResult>;
  /** Whether a transaction is still waiting in the node's mempool. */
  readonly pending: (txHash: Uint8Array) => boolean;
  /**
   * Why the mempool's re-check after a commit threw a transaction out (`Mempool.evictionOf`):
   * an issuance refused there (e.g. `CA_RATE_LIMITED`) gets that refusal's ACME problem.
   */
  readonly evictionOf?: (txHash: Uint8Array) => { code: string; message: string } | undefined;
  /**
   * Longest wait for commit and publication (default 120 s); then `UNAVAILABLE`. A transaction
   * still pending or committed then keeps its issuance record, and the server leaves the order
   * `processing`: a later poll of the order waits for the same transaction again, and so does
   * the server when `committed` finds the transaction committed, refused or gone (`onResumable`).
   */
  readonly timeoutMs?: number;
  /**
   * Attempts of one order in a row whose reads of the node's state failed (`query` threw: the
   * node stopping, its store busy) before the order fails (default
   * `DEFAULT_MAX_CONSECUTIVE_READ_FAILURES`), so a read that keeps failing cannot hold the order
   * `processing` forever.
   */
  readonly maxConsecutiveReadFailures?: number;
  /**
   * Where the transaction each order was sent as is kept across restarts (the ACME store's
   * `acme_issuance` table): a resumed order waits for it instead of sending a new request.
   */
  readonly issuances?: IssuanceRecords;
}

/** The order → transaction records `ConsensusAcmeIssuer` keeps (`AcmeStore` implements them). */
export interface IssuanceRecords {
  issuanceOf(orderId: string): Uint8Array | null;
  recordIssuance(orderId: string, txHash: Uint8Array): void;
  forgetIssuance(orderId: string): void;
}

export const DEFAULT_ACME_ISSUE_TIMEOUT_MS = 120_000;
export const DEFAULT_MAX_CONSECUTIVE_READ_FAILURES = 5;

/** A read of the node's state that threw (`query`): may succeed when tried again. */
class StateReadError extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'StateReadError';
  }
}

/**
 * How an attempt failed, beside a refusal or a wait that ran out: `final` when trying again
 * cannot help (a record that does not decode, a certificate whose issuer is in no bundle in
 * effect), `transient` when a read of the state threw.
 */
type FailureKind = 'final' | 'transient';

/** Whether an order's transaction may still yield a certificate; `unreadable` if unknown. */
type Outstanding = 'yes' | 'no' | 'unreadable';

/** Refusal codes of the CA core that concern the order's names. */
const NAME_REFUSALS = ['name_not_allowed', 'wildcard_not_allowed', 'name_kind_not_allowed'];
/** Refusal codes that concern the CSR's key. */
const KEY_REFUSALS = ['key_type_not_allowed', 'key_too_weak'];

/** The ACME issuer error for a `ca` refusal `code` (a `CaErrorCode` string) with `message`. */
export function acmeErrorForCaRefusal(code: string, message: string): AcmeIssuerError {
  const detail = { caCode: code };
  if (code === 'CA_POLICY_REFUSED') {
    if (NAME_REFUSALS.some((refusal) => message.includes(refusal))) {
      return new AcmeIssuerError(
        AcmeIssuerErrorCode.REJECTED_IDENTIFIER,
        `the CA refuses a name: ${message}`,
        detail,
      );
    }
    if (KEY_REFUSALS.some((refusal) => message.includes(refusal))) {
      return new AcmeIssuerError(
        AcmeIssuerErrorCode.BAD_CSR,
        `the CA refuses the key: ${message}`,
        detail,
      );
    }
  }
  // Multi-perspective validation (docs/acme.md): too few validators corroborated a name, or an
  // attestation did not decode.
  if (code === 'CA_DCV_QUORUM' || code === 'CA_DCV_INVALID') {
    return new AcmeIssuerError(
      AcmeIssuerErrorCode.UNAUTHORIZED,
      `the CA refuses without proof of control: ${message}`,
      detail,
    );
  }
  if (code === 'CA_RATE_LIMITED') {
    return new AcmeIssuerError(
      AcmeIssuerErrorCode.RATE_LIMITED,
      `the CA's issuance rate limit is reached: ${message}`,
      detail,
    );
  }
  // Revoked already, by another route or a concurrent request (RFC 8555 §7.6: alreadyRevoked).
  if (code === 'CA_REVOKED') {
    return new AcmeIssuerError(
      AcmeIssuerErrorCode.ALREADY_REVOKED,
      `the certificate is already revoked: ${message}`,
      detail,
    );
  }
  // The CSR's key was revoked for keyCompromise: the account needs a new key. RFC 8555 §6.7 has badPublicKey for this; the ACME face's issuer
  // errors carry no such code, so the order records badCSR with the CA's reason.
  if (code === 'CA_KEY_COMPROMISED') {
    return new AcmeIssuerError(
      AcmeIssuerErrorCode.BAD_CSR,
      `the CA refuses the CSR's public key: ${message}`,
      detail,
    );
  }
  if (code === 'CA_REQUEST_INVALID') {
    return new AcmeIssuerError(
      AcmeIssuerErrorCode.BAD_CSR,
      `the CA refuses the request: ${message}`,
      detail,
    );
  }
  return new AcmeIssuerError(
    AcmeIssuerErrorCode.UNAVAILABLE,
    `the CA cannot issue now: ${code}: ${message}`,
    detail,
  );
}

interface Waiter {
  readonly txHash: Uint8Array;
  /** Issuance: wait for the publication after the commit; revocation: the commit only. */
  readonly kind: 'issue' | 'revoke';
  committed: boolean;
  resolve(value: AcmeIssuedCertificate | null): void;
  reject(error: AcmeIssuerError): void;
}

/** The code name of a committed transaction's log (`CA_…: message`). */
function logCode(log: string): { code: string; message: string } {
  const colon = log.indexOf(': ');
  return colon === -1
    ? { code: log, message: '' }
    : { code: log.slice(0, colon), message: log.slice(colon + 2) };
}

export class ConsensusAcmeIssuer implements AcmeIssuer {
  private readonly options: ConsensusAcmeIssuerOptions;
  private readonly sender: Uint8Array;
  private readonly waiters = new Set<Waiter>();
  /** Orders seen since start: a repeated `issue` of one order waits for the same transaction. */
  private readonly orders = new Map<string, Promise<AcmeIssuedCertificate>>();
  /** Submissions one at a time, so sequence numbers follow each other. */
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * The issuance transactions (hex) this process admitted whose order is not settled yet: one
   * of them gone from the mempool uncommitted was dropped, not lost with a restart's mempool.
   */
  private readonly sentHere = new Set<string>();
  private localNext = 0;
  private closed = false;
  /** Errors of this issuer that are not plain refusals or timeouts (`FailureKind`). */
  private readonly failureKinds = new WeakMap<Error, FailureKind>();
  /** Attempts in a row, per order, with a failed read of the state. */
  private readonly readFailures = new Map<string, number>();
  /**
   * Orders (→ transaction) whose wait ran out with the transaction pending or committed and no
   * attempt running: `committed` hands each back to the listeners once it moved on. At most one
   * entry per `processing` order of the server.
   */
  private readonly kept = new Map<string, Uint8Array>();
  private readonly resumableListeners = new Set<(orderId: string) => void>();
  /** Intermediates added after genesis, by name, with the bundle in effect that holds them. */
  private readonly addedBundles = new Map<
    string,
    { readonly bundle: TrustBundle; readonly activatedAt: number }
  >();

  constructor(options: ConsensusAcmeIssuerOptions) {
    this.options = options;
    this.sender = ed25519RawPublicKey(options.accountKey);
  }

  /** The node's `query`, its failures marked as reads that may succeed when tried again. */
  private readonly read = (request: QueryRequest): QueryResponse => {
    try {
      return this.options.query(request);
    } catch (error) {
      throw new StateReadError(error);
    }
  };

  /** `txHash`'s result in the node's recent-results index, or null. */
  private recentResult(txHash: Uint8Array): { code: number; log: string } | null {
    const answer = this.read({ path: TX_RESULT_QUERY, data: txHash });
    return answer.value === null ? null : decodeRecordedTxResult(answer.value);
  }

  /**
   * The committed outcome of `txHash` (code and log), or null while it is not committed as far
   * as the node knows. The node's recent-results index (`tx/result`) starts empty when it
   * starts, so a `ca` request committed before a restart is also found by its issuance record
   * in the CA state (`ca/request`): it exists only for a request that was applied (code 0).
   * Without that, a restarted node sent a second request for such an order: a duplicate
   * certificate.
   */
  private committedResult(txHash: Uint8Array): { code: number; log: string } | null {
    const recent = this.recentResult(txHash);
    if (recent !== null) return recent;
    const record = this.read({ path: `${CA_MODULE_NAME}/${CA_QUERIES.request}`, data: txHash });
    return record.value === null ? null : { code: 0, log: '' };
  }

  /**
   * Calls `listener` with an order whose earlier wait ran out (its issuance record kept, the
   * server's order still `processing`) once a commit finds its transaction committed, refused
   * or gone from the mempool: the server runs the order's issuance again, which waits for the
   * publication or fails the order, with no client poll needed.
   */
  onResumable(listener: (orderId: string) => void): void {
    this.resumableListeners.add(listener);
  }

  /** The account (hex of the Ed25519 key) the requests come from. */
  get account(): string {
    return toHex(this.sender);
  }

  issue(request: AcmeIssueRequest): Promise<AcmeIssuedCertificate> {
    const known = this.orders.get(request.orderId);
    if (known !== undefined) return known;
    this.kept.delete(request.orderId);
    const result = this.issueOnce(request).then(
      (issued) => {
        // The certificate is in the server's store from here on; the entry only joined
        // concurrent calls while the issuance ran.
        this.orders.delete(request.orderId);
        this.settled(request.orderId);
        this.readFailures.delete(request.orderId);
        return issued;
      },
      (error: unknown) => {
        this.orders.delete(request.orderId);
        throw this.attemptFailed(request.orderId, error);
      },
    );
    this.orders.set(request.orderId, result);
    return result;
  }

  /**
   * What a failed attempt of `orderId` leaves: a transaction still in the mempool, or committed
   * and not yet published, keeps its record (the order waits for it again instead of sending a
   * duplicate), unless the failure is final or reads failed `maxConsecutiveReadFailures`
   * attempts in a row. Stopping is not a failure of the order: the record stays for the restart.
   */
  private attemptFailed(orderId: string, error: unknown): unknown {
    const failure = this.asIssuerError(error, 'reading the CA state failed');
    if (this.closed || !(failure instanceof AcmeIssuerError)) return failure;
    const kind = this.failureKinds.get(failure);
    const outstanding = kind === 'final' ? 'no' : this.outstanding(orderId);
    if (outstanding === 'no') {
      this.forget(orderId);
      return failure;
    }
    if (kind === 'transient' || outstanding === 'unreadable') {
      const failures = (this.readFailures.get(orderId) ?? 0) + 1;
      const most = this.options.maxConsecutiveReadFailures ?? DEFAULT_MAX_CONSECUTIVE_READ_FAILURES;
      if (failures >= most) {
        this.forget(orderId);
        return new AcmeIssuerError(
          AcmeIssuerErrorCode.UNAVAILABLE,
          `reading the CA state failed in ${failures} attempts in a row: ${failure.message}`,
        );
      }
      this.readFailures.set(orderId, failures);
    } else {
      this.readFailures.delete(orderId);
    }
    const sent = this.options.issuances?.issuanceOf(orderId) ?? null;
    if (sent !== null && this.resumableListeners.size > 0) this.kept.set(orderId, sent);
    return failure;
  }

  /** The order failed for good: its transaction is no longer followed. */
  private forget(orderId: string): void {
    this.settled(orderId);
    this.options.issuances?.forgetIssuance(orderId);
    this.readFailures.delete(orderId);
    this.kept.delete(orderId);
  }

  /**
   * `error` as an `AcmeIssuerError` (`UNAVAILABLE`, "`context`: …" for anything else), its
   * `FailureKind` noted: a read that threw is transient, any other error (a record that does
   * not decode, a chain that cannot be built) happens again on every attempt, so it is final.
   */
  private asIssuerError(error: unknown, context: string): unknown {
    if (error instanceof AcmeIssuerError) return error;
    if (!(error instanceof Error)) return error;
    const failure = new AcmeIssuerError(
      AcmeIssuerErrorCode.UNAVAILABLE,
      `${context}: ${error.message}`,
    );
    this.failureKinds.set(failure, error instanceof StateReadError ? 'transient' : 'final');
    return failure;
  }

  /** The order's transaction no longer needs telling apart from one lost with a restart. */
  private settled(orderId: string): void {
    const sent = this.options.issuances?.issuanceOf(orderId) ?? null;
    if (sent !== null) this.sentHere.delete(toHex(sent));
  }

  /** Orders whose issuance is running now (joined by a repeated `issue`). */
  get issuingCount(): number {
    return this.orders.size;
  }

  /**
   * Whether the transaction recorded for `orderId` may still yield a certificate: waiting in
   * the mempool, or committed without a refusal (publication follows). A refused transaction,
   * or one that left the mempool uncommitted, is not. A failed read is `unreadable`: the record
   * is kept (forgetting a live transaction would send a duplicate), for a bounded number of
   * attempts (`attemptFailed`).
   */
  private outstanding(orderId: string): Outstanding {
    const sent = this.options.issuances?.issuanceOf(orderId) ?? null;
    if (sent === null) return 'no';
    try {
      const result = this.committedResult(sent);
      if (result === null) return this.options.pending(sent) ? 'yes' : 'no';
      return result.code === 0 ? 'yes' : 'no';
    } catch {
      return 'unreadable';
    }
  }

  private async issueOnce(request: AcmeIssueRequest): Promise<AcmeIssuedCertificate> {
    // Sent before a restart: wait for that transaction if the chain or the mempool still knows
    // it; one that was only in the mempool when the node stopped is gone (the mempool is not
    // kept), and the order is sent again.
    const sent = this.options.issuances?.issuanceOf(request.orderId) ?? null;
    if (sent !== null && (this.committedResult(sent) !== null || this.options.pending(sent))) {
      // It may be committed and published already, with no commit to come: look now.
      const issued = await this.wait(sent, 'issue', true);
      if (issued === null) throw new RangeError('an issuance resolved without a certificate');
      return issued;
    }
    if (sent !== null && this.sentHere.has(toHex(sent))) {
      // Admitted by this process (an earlier wait ran out), then gone from the mempool
      // uncommitted: dropped, so the order fails rather than sending another request.
      this.localNext = 0;
      throw this.droppedError(sent);
    }
    const dnsNames = request.identifiers.filter((i) => i.type === 'dns').map((i) => i.value);
    const ipAddresses = request.identifiers.filter((i) => i.type === 'ip').map((i) => i.value);
    const txHash = await this.submitInOrder((sequence) => {
      try {
        return buildCaRequestTransaction({
          chainId: this.options.chainId,
          privateKey: this.options.accountKey,
          sequence,
          stampDifficulty: this.options.stampDifficulty,
          request: { profile: 'service', csr: request.csrDer, dnsNames, ipAddresses },
          ...(request.dcv === undefined || request.dcv.length === 0 ? {} : { dcv: request.dcv }),
        });
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 'CA_DCV_INVALID') throw acmeErrorForCaRefusal(code, (error as Error).message);
        throw new AcmeIssuerError(
          AcmeIssuerErrorCode.BAD_CSR,
          `the CA refuses the request: ${(error as Error).message}`,
          { caCode: typeof code === 'string' ? code : 'CA_REQUEST_INVALID' },
        );
      }
    });
    if (this.options.issuances !== undefined) {
      this.options.issuances.recordIssuance(request.orderId, txHash);
      this.sentHere.add(toHex(txHash));
    }
    const issued = await this.wait(txHash, 'issue');
    if (issued === null) throw new RangeError('an issuance resolved without a certificate');
    return issued;
  }

  async revoke(request: AcmeRevokeRequest): Promise<void> {
    const serial = certificateSerialOf(request.certDer);
    // Committed as revoked already: the CA would refuse the transaction with CA_REVOKED.
    if (this.isRevoked(toHex(serial))) {
      throw acmeErrorForCaRefusal('CA_REVOKED', `certificate ${toHex(serial)} is revoked`);
    }
    const txHash = await this.submitInOrder((sequence) =>
      buildTransaction({
        chainId: this.options.chainId,
        privateKey: this.options.accountKey,
        sequence,
        module: CA_MODULE_NAME,
        body: caRevokeBody(serial, request.reason),
        stampDifficulty: this.options.stampDifficulty,
      }),
    );
    await this.wait(txHash, 'revoke');
  }

  /**
   * Whether the chain records the certificate with this serial as revoked (`ca/rev/<serial>`
   * in the node's committed state), whoever revoked it: this server, `hypermesh cert revoke`,
   * or the holder of the certificate's key.
   */
  isRevoked(serialHex: string): boolean {
    const serial = Buffer.from(serialHex, 'hex');
    if (serial.length !== 16 || serial.toString('hex') !== serialHex) return false;
    const answer = this.options.query({
      path: `${CA_MODULE_NAME}/${CA_QUERIES.revocation}`,
      data: Uint8Array.from(serial),
    });
    return answer.value !== null;
  }

  /**
   * Called after each commit of the node (and once at start): settles the issuances and
   * revocations whose transaction was committed, refused, published or lost, and hands the
   * kept orders whose transaction is no longer only pending to `onResumable` (one read and one
   * mempool lookup per kept order).
   */
  committed(): void {
    for (const waiter of [...this.waiters]) this.checkOrFail(waiter);
    for (const [orderId, txHash] of [...this.kept]) {
      if (this.onlyPending(txHash)) continue;
      this.kept.delete(orderId);
      for (const listener of this.resumableListeners) listener(orderId);
    }
  }

  /** Waiting in the mempool, not committed; a failed read is not (the attempt counts it). */
  private onlyPending(txHash: Uint8Array): boolean {
    try {
      return this.committedResult(txHash) === null && this.options.pending(txHash);
    } catch {
      return false;
    }
  }

  /** `check`, with a failed read or decoding of the state settling the wait as `UNAVAILABLE`. */
  private checkOrFail(waiter: Waiter): void {
    try {
      this.check(waiter);
    } catch (error) {
      this.settle(waiter, () =>
        waiter.reject(this.asIssuerError(error, 'reading the CA state failed') as AcmeIssuerError),
      );
    }
  }

  /** Fails every wait (the node is stopping). */
  close(): void {
    this.closed = true;
    this.kept.clear();
    for (const waiter of [...this.waiters]) {
      this.settle(waiter, () =>
        waiter.reject(new AcmeIssuerError(AcmeIssuerErrorCode.UNAVAILABLE, 'the node is stopping')),
      );
    }
  }

  private check(waiter: Waiter): void {
    if (!waiter.committed) {
      const result =
        waiter.kind === 'issue'
          ? this.committedResult(waiter.txHash)
          : this.recentResult(waiter.txHash);
      if (result === null) {
        if (this.options.pending(waiter.txHash)) return;
        // Neither pending nor committed: dropped from the mempool (e.g. a sequence gap).
        this.localNext = 0;
        this.settle(waiter, () => waiter.reject(this.droppedError(waiter.txHash)));
        return;
      }
      if (result.code !== 0) {
        const { code, message } = logCode(result.log);
        this.settle(waiter, () => waiter.reject(acmeErrorForCaRefusal(code, message)));
        return;
      }
      waiter.committed = true;
      if (waiter.kind === 'revoke') {
        this.settle(waiter, () => waiter.resolve(null));
        return;
      }
    }
    // The chain is built inside the read, so a failure of either (an issuer in no bundle in
    // effect, say) settles the wait instead of escaping as an unhandled rejection.
    void this.publishedCertificate(waiter.txHash)
      .then((issued) => {
        if (issued !== null) this.settle(waiter, () => waiter.resolve(issued));
      })
      .catch((error: unknown) =>
        this.settle(waiter, () =>
          waiter.reject(
            this.asIssuerError(
              error,
              'reading the published certificate failed',
            ) as AcmeIssuerError,
          ),
        ),
      );
  }

  /** The certificate published for `txHash` with its chain, or null while unpublished. */
  private async publishedCertificate(txHash: Uint8Array): Promise<AcmeIssuedCertificate | null> {
    const status = await findPublishedCertificate(this.read, txHash);
    if (status.status !== 'published') return null;
    const bundle = await this.bundleInEffect(status.issuer, status.publishedAt);
    if (bundle === null) {
      const failure = new AcmeIssuerError(
        AcmeIssuerErrorCode.UNAVAILABLE,
        `certificate ${toHex(status.serial)} was published at height ${status.publishedAt} by intermediate "${status.issuer}", which is neither in the genesis trust bundle nor added (and in effect) by then: its chain cannot be built`,
      );
      this.failureKinds.set(failure, 'final');
      throw failure;
    }
    const chain = certificateChainPem(bundle, status.certificate, status.issuer);
    const leaf = derToPem(status.certificate);
    return { certificatePem: leaf, chainPem: chain.slice(leaf.length) };
  }

  /**
   * The trust bundle holding `issuer` as it was in effect at `height` (docs/ca.md, "Adding a
   * validator's intermediate"): the genesis bundle, or for an intermediate added since, the
   * genesis bundle with the intermediates the node's committed state lists (read as
   * `hypermesh cert` does; the node's own state, so its roots need no further check), if
   * `issuer` was in effect by `height`. Null when it is in neither. Added intermediates are
   * never removed, so a found one is remembered.
   */
  private async bundleInEffect(issuer: string, height: number): Promise<TrustBundle | null> {
    const genesis = this.options.bundle;
    if (genesis.validators.some((validator) => validator.name === issuer)) return genesis;
    let known = this.addedBundles.get(issuer);
    if (known === undefined) {
      const { added } = await readIntermediates(this.read);
      const record = added.find((intermediate) => intermediate.name === issuer);
      if (record === undefined) return null;
      known = { bundle: trustBundleInEffect(genesis, added), activatedAt: record.activatedAt };
      this.addedBundles.set(issuer, known);
    }
    return known.activatedAt <= height ? known.bundle : null;
  }

  /**
   * The error for a transaction that left the mempool uncommitted: the refusal of the
   * mempool's re-check after a commit when it has one (`evictionOf`), else `UNAVAILABLE`.
   */
  private droppedError(txHash: Uint8Array): AcmeIssuerError {
    const eviction = this.options.evictionOf?.(txHash);
    if (eviction !== undefined && eviction.code.startsWith('CA_')) {
      return acmeErrorForCaRefusal(eviction.code, eviction.message);
    }
    return new AcmeIssuerError(
      AcmeIssuerErrorCode.UNAVAILABLE,
      `the ca transaction ${toHex(txHash)} left the mempool without being committed`,
    );
  }

  private settle(waiter: Waiter, action: () => void): void {
    if (!this.waiters.delete(waiter)) return;
    action();
  }

  /**
   * Waits for `txHash` to be committed (and, for an issuance, published), with a deadline;
   * `checkNow` looks at the state at once instead of at the next commit. At the deadline the
   * state is looked at once more, so a refusal or a drop gets its own error; a transaction still
   * pending or committed gets `UNAVAILABLE`, and `issue` keeps its record (the order is not
   * failed: a later `issue` of it waits again).
   */
  private wait(
    txHash: Uint8Array,
    kind: Waiter['kind'],
    checkNow = false,
  ): Promise<AcmeIssuedCertificate | null> {
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_ACME_ISSUE_TIMEOUT_MS;
    if (this.closed) {
      // Stopped while the transaction was being admitted: `close` has settled its waiters.
      return Promise.reject(
        new AcmeIssuerError(AcmeIssuerErrorCode.UNAVAILABLE, 'the node is stopping'),
      );
    }
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => {
        this.checkOrFail(waiter);
        this.settle(waiter, () =>
          reject(
            new AcmeIssuerError(
              AcmeIssuerErrorCode.UNAVAILABLE,
              `the ca transaction ${toHex(txHash)} was not ${kind === 'issue' ? 'published' : 'committed'} within ${timeoutMs} ms`,
            ),
          ),
        );
      }, timeoutMs);
      deadline.unref();
      const waiter: Waiter = {
        txHash,
        kind,
        committed: false,
        resolve: (value) => {
          clearTimeout(deadline);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(deadline);
          reject(error);
        },
      };
      this.waiters.add(waiter);
      if (checkNow) this.checkOrFail(waiter);
    });
  }

  /**
   * Builds (with the next sequence number) and submits one transaction, one at a time; a
   * sequence refusal is retried once with the committed sequence.
   */
  private submitInOrder(
    build: (sequence: number) => { bytes: Uint8Array; txHash: Uint8Array },
  ): Promise<Uint8Array> {
    const run = async (): Promise<Uint8Array> => {
      if (this.closed) {
        throw new AcmeIssuerError(AcmeIssuerErrorCode.UNAVAILABLE, 'the node is stopping');
      }
      for (let attempt = 0; ; attempt += 1) {
        const built = build(this.nextSequence());
        const result = await this.options.submit(built.bytes);
        if (result.ok) {
          this.localNext += 1;
          return built.txHash;
        }
        // Only a sequence refusal says the local count is off; any other refusal consumed no
        // sequence number, and transactions of this account may still be waiting in the mempool.
        if (!result.code.startsWith('TX_SEQUENCE')) {
          throw acmeErrorForCaRefusal(result.code, result.message);
        }
        this.localNext = 0;
        if (attempt === 0) continue;
        throw acmeErrorForCaRefusal(result.code, result.message);
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private nextSequence(): number {
    const answer = this.options.query({ path: SEQUENCE_QUERY, data: this.sender });
    this.localNext = Math.max(this.localNext, decodeSequence(answer.value));
    return this.localNext;
  }
}
