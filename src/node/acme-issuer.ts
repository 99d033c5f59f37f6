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
} from '../trustchain/ca-module/index.js';
import { certificateSerialOf } from './cert-tools.js';

/**
 * The consensus-backed ACME issuer (docs/acme.md, "In the node"): each finalized order becomes a
 * `ca/request` transaction signed by the node's ACME account key — an account whose genesis
 * `app.ca` grant covers the names the server hands out — admitted to the node's own mempool.
 * The issuer then follows the node's commits (`committed(height)`, called from the node's
 * `commit` event; no polling timer): once the request is committed it waits for the batch to be
 * published and returns the leaf with its issuer's intermediate. A refusal at admission or at
 * execution becomes an `AcmeIssuerError` the server turns into an ACME problem.
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
   * `processing` (a later poll of the order waits for the same transaction again).
   */
  readonly timeoutMs?: number;
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

  constructor(options: ConsensusAcmeIssuerOptions) {
    this.options = options;
    this.sender = ed25519RawPublicKey(options.accountKey);
  }

  /** The account (hex of the Ed25519 key) the requests come from. */
  get account(): string {
    return toHex(this.sender);
  }

  issue(request: AcmeIssueRequest): Promise<AcmeIssuedCertificate> {
    const known = this.orders.get(request.orderId);
    if (known !== undefined) return known;
    const result = this.issueOnce(request).then(
      (issued) => {
        // The certificate is in the server's store from here on; the entry only joined
        // concurrent calls while the issuance ran.
        this.orders.delete(request.orderId);
        this.settled(request.orderId);
        return issued;
      },
      (error: unknown) => {
        this.orders.delete(request.orderId);
        // A transaction still in the mempool, or committed and not yet published, keeps its
        // record: the order waits for it again (`issueOnce`) instead of sending a duplicate.
        // Stopping is not a failure of the order either: the record stays for the restart.
        if (!this.closed && !this.outstanding(request.orderId)) {
          this.settled(request.orderId);
          this.options.issuances?.forgetIssuance(request.orderId);
        }
        throw error;
      },
    );
    this.orders.set(request.orderId, result);
    return result;
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
   * or one that left the mempool uncommitted, is not. A failed read counts as outstanding:
   * forgetting a live transaction would send a duplicate.
   */
  private outstanding(orderId: string): boolean {
    const sent = this.options.issuances?.issuanceOf(orderId) ?? null;
    if (sent === null) return false;
    try {
      const answer = this.options.query({ path: TX_RESULT_QUERY, data: sent });
      if (answer.value === null) return this.options.pending(sent);
      return decodeRecordedTxResult(answer.value).code === 0;
    } catch {
      return true;
    }
  }

  private async issueOnce(request: AcmeIssueRequest): Promise<AcmeIssuedCertificate> {
    // Sent before a restart: wait for that transaction if the chain or the mempool still knows
    // it; one that was only in the mempool when the node stopped is gone (the mempool is not
    // kept), and the order is sent again.
    const sent = this.options.issuances?.issuanceOf(request.orderId) ?? null;
    if (
      sent !== null &&
      (this.options.query({ path: TX_RESULT_QUERY, data: sent }).value !== null ||
        this.options.pending(sent))
    ) {
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
   * revocations whose transaction was committed, refused, published or lost.
   */
  committed(): void {
    for (const waiter of [...this.waiters]) this.checkOrFail(waiter);
  }

  /** `check`, with a failed read of the state settling the wait as `UNAVAILABLE`. */
  private checkOrFail(waiter: Waiter): void {
    try {
      this.check(waiter);
    } catch (error) {
      this.settle(waiter, () =>
        waiter.reject(
          new AcmeIssuerError(
            AcmeIssuerErrorCode.UNAVAILABLE,
            `reading the CA state failed: ${(error as Error).message}`,
          ),
        ),
      );
    }
  }

  /** Fails every wait (the node is stopping). */
  close(): void {
    this.closed = true;
    for (const waiter of [...this.waiters]) {
      this.settle(waiter, () =>
        waiter.reject(new AcmeIssuerError(AcmeIssuerErrorCode.UNAVAILABLE, 'the node is stopping')),
      );
    }
  }

  private check(waiter: Waiter): void {
    if (!waiter.committed) {
      const answer = this.options.query({ path: TX_RESULT_QUERY, data: waiter.txHash });
      if (answer.value === null) {
        if (this.options.pending(waiter.txHash)) return;
        // Neither pending nor committed: dropped from the mempool (e.g. a sequence gap).
        this.localNext = 0;
        this.settle(waiter, () => waiter.reject(this.droppedError(waiter.txHash)));
        return;
      }
      const result = decodeRecordedTxResult(answer.value);
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
    // The chain is built inside the read, so a failure of either (an issuer missing from the
    // bundle, say) settles the wait instead of escaping as an unhandled rejection.
    void findPublishedCertificate(this.options.query, waiter.txHash)
      .then((status) => {
        if (status.status !== 'published' || !this.waiters.has(waiter)) return;
        const chain = certificateChainPem(this.options.bundle, status.certificate, status.issuer);
        const leaf = derToPem(status.certificate);
        this.settle(waiter, () =>
          waiter.resolve({ certificatePem: leaf, chainPem: chain.slice(leaf.length) }),
        );
      })
      .catch((error: unknown) =>
        this.settle(waiter, () =>
          waiter.reject(
            new AcmeIssuerError(
              AcmeIssuerErrorCode.UNAVAILABLE,
              `reading the published certificate failed: ${(error as Error).message}`,
            ),
          ),
        ),
      );
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
