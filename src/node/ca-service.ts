import type { Registry } from 'prom-client';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { defaultFalcon, type FalconBackend } from '../crypto/falcon.js';
import { leafHash } from '../crypto/merkle.js';
import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import { decodeTransaction } from '../consensus/application/index.js';
import type { MempoolAddResult } from '../consensus/mempool.js';
import type { ServiceRegistry } from '../consensus/net/index.js';
import { decodeBlock } from '../consensus/wire.js';
import {
  registerCaRpc,
  type CaProvenAnswer,
  type CaRpcOptions,
  type CaRpcSource,
  type CaValidateResponse,
} from '../faces/ca-rpc.js';
import { OCSP_MAX_BLOCK_AGE_MS } from '../faces/ocsp-http.js';
import { StoqError, StoqErrorCode } from '../stoq/errors.js';
import type { IdentityCheck, RevocationAnswer, RevocationQuery } from '../stoq/auth/index.js';
import type { NodeStore } from '../storage/index.js';
import { CaError, CaErrorCode } from '../trustchain/ca/errors.js';
import { readTbs, splitCertificate } from '../trustchain/ca/certificate.js';
import { verifyIssuedCertificate } from '../trustchain/ca/verify.js';
import { PROFILES } from '../trustchain/ca/profiles.js';
import {
  CA_MODULE_NAME,
  CaStateReader,
  REVOCATION_REASONS,
  caQuery,
  caStateKey,
  createIssuerView,
  decodeCaBody,
  decodeTreeHead,
  isGenesisCertificateRecord,
  lacksIssuanceExtensions,
  type CaModuleConfig,
} from '../trustchain/ca-module/index.js';
import { CtError, encodeMerkleTreeLeaf, type CtLog } from '../trustchain/ct/index.js';
import { createCaMetrics, type CaMetrics } from './ca-metrics.js';
import { committedBlockFreshness } from './ca-node.js';
import { createCorroborateCounter, type Corroborator } from './acme-mpic.js';
import { decodeDcvAttestation } from '../trustchain/ca-module/dcv.js';
import type { Logger } from './log.js';
import { storedReceipt } from './tx-receipts.js';

/**
 * The TrustChain CA's services in a running node (docs/ca.md "RPC", "Metrics", "Revocation in
 * STOQ"): the `hypermesh.trustchain.ca.v1` RPC face (src/faces/ca-rpc.ts) with `validate` and the
 * log reads implemented here, the CA metrics updated after each commit, and a STOQ revocation
 * check answered from the committed `ca` state.
 */
export interface CaServiceOptions {
  readonly ca: CaModuleConfig;
  readonly store: NodeStore;
  /** Full-key reads of the latest committed state. */
  readonly state: { get(key: Uint8Array): Uint8Array | null };
  readonly query: (request: QueryRequest) => QueryResponse;
  /** Client admission; `caller` is the client's identity URI (the intake's per-caller share). */
  readonly submit: (tx: Uint8Array, caller?: string) => Promise<MempoolAddResult>;
  /** The node's CT log (ca-node.ts). */
  readonly log: CtLog;
  /** Where the RPC face is served; null: metrics and revocation only. */
  readonly rpc: ServiceRegistry | null;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly falcon?: FalconBackend;
  /** Wall clock (ms): certificate validity and the last committed block's age. */
  readonly now?: () => number;
  /**
   * `validate` refuses (UNAVAILABLE, reason `stale`) once the last committed block of `store`
   * is older than this, as OCSP and the CRL do (`committedBlockFreshness`, the node's
   * `ca.maxBlockAgeSeconds`); default `OCSP_MAX_BLOCK_AGE_MS`.
   */
  readonly maxBlockAgeMs?: number;
  /** The RPC face's `validate` budget per identity (ca-rpc.ts). */
  readonly rpcOptions?: CaRpcOptions;
}

export interface CaService {
  /** Updates the metrics from committed block `height`. Never throws (failures are logged). */
  committed(height: number): void;
  /**
   * STOQ's revocation check for TrustChain-issued certificates: a certificate whose issuer is one
   * of the trust bundle's intermediates (same DER) is `revoked` (with its reason) once its
   * revocation is committed, `good` otherwise; any other certificate is `good` here (another
   * check — the dev CA's revoked-serials file — covers it).
   */
  revocation(query: RevocationQuery): RevocationAnswer;
  /**
   * The node's view of `certificate` (docs/ca.md, "RPC"). Throws StoqError UNAVAILABLE
   * (`detail.reason` `stale`) while the last committed block is older than `maxBlockAgeMs`: a
   * node that is behind may not have seen a revocation, so it does not vouch for the present.
   */
  validate(
    certificate: Uint8Array,
    purpose?: 'serverAuth' | 'clientAuth' | 'any',
  ): CaValidateResponse;
  readonly metrics: CaMetrics;
  /**
   * Who answers the RPC's `corroborate` (acme-mpic.ts; set once the node's ACME validation is
   * configured); without one the node refuses with UNAVAILABLE.
   */
  setCorroborator(corroborator: Corroborator | null): void;
}

/**
 * What the node's STOQ endpoint needs to accept TrustChain-issued certificates (docs/ca.md
 * "Revocation in STOQ"). It reads only the genesis trust bundle and the committed state, so a
 * node builds it before its STOQ endpoint, before the CA service exists.
 */
export interface CaStoqTrust {
  /** The TrustChain root (DER); peers send the intermediate in their chain. */
  readonly roots: readonly Uint8Array[];
  /** `revoked` (with the RFC 5280 reason name) once a committed block holds the revocation. */
  readonly revocation: (query: RevocationQuery) => RevocationAnswer;
  /**
   * Least privilege for TrustChain leaves: any profile may be a `client`; the `validator` and
   * `node` roles need a node-profile certificate (EKU serverAuth + clientAuth), which the CA
   * issues only under a grant for the `node` profile and only with a `{node,validator}` URI.
   */
  readonly identityCheck: IdentityCheck;
}

export function createCaStoqTrust(options: {
  readonly ca: CaModuleConfig;
  /** Full-key reads of the latest committed state. */
  readonly state: { get(key: Uint8Array): Uint8Array | null };
  /**
   * Whether the committed state is current (the node is not catching up). While it is not, a
   * certificate the state does not know yet — published, or an intermediate approved, in a
   * block the node has not synced — is taken on its chain alone, as it must be for the node to
   * reach the peers it syncs from (validators renew their certificates; a new node starts from
   * block 0). Sessions are re-checked at every commit, so once the node is current a leaf
   * consensus never issued is dropped. Absent: always current (strict).
   */
  readonly caughtUp?: () => boolean;
}): CaStoqTrust {
  const { ca } = options;
  const moduleState = { get: (key: Uint8Array) => options.state.get(caStateKey(key)) };
  const reader = new CaStateReader(moduleState);
  // The genesis intermediates and those added through consensus since (intermediates.ts).
  const view = createIssuerView(ca);
  const genesisIntermediates = new Set(
    ca.issuers.map((issuer) => toHex(issuer.issuer.certificate)),
  );
  // Genesis intermediates need no state read; added ones are read from the committed state.
  const isIntermediate = (der: Uint8Array): boolean => {
    const hex = toHex(der);
    return (
      genesisIntermediates.has(hex) ||
      view.issuers(moduleState).some((issuer) => toHex(issuer.issuer.certificate) === hex)
    );
  };
  const rootHex = toHex(ca.bundle.root.certificate);
  // From the genesis, not from state: a node that has not committed block 1 yet (which writes
  // their records) must still accept the genesis validators it syncs from.
  const genesisCertificates = new Set(ca.genesisCertificates.map((entry) => toHex(entry.der)));
  const nodeUsage = [...PROFILES.node.extendedKeyUsage].sort().join(',');

  /**
   * Whether consensus issued `der`, a leaf signed by a TrustChain intermediate: one of the
   * genesis bootstrap certificates, or a certificate the committed state holds as published
   * (`ca/cert/<serial>`, written only at publication) with exactly these bytes. Every validator
   * holds its intermediate's key, so the signature alone proves only that one validator signed.
   * A failing state read throws (the handshake fails closed as `revocation_unknown`).
   */
  const issuedByConsensus = (der: Uint8Array): boolean => {
    if (genesisCertificates.has(toHex(der))) return true;
    const serial = readTbs(splitCertificate(der).tbs).serial;
    if (serial.length !== 16) return false;
    const record = reader.certificate(serial);
    // A twin of a published serial is refused whatever the node's height.
    if (record === null) return catchingUp();
    return bytesEqual(record.der, der);
  };
  const catchingUp = (): boolean => options.caughtUp !== undefined && !options.caughtUp();

  const revocation = (query: RevocationQuery): RevocationAnswer => {
    const { certificate, issuer } = query;
    if (toHex(issuer.der) === rootHex) {
      // The root signs only intermediates, and one is an issuer once consensus put it into
      // effect (genesis bundle or approved `add-intermediate`).
      return isIntermediate(certificate.der) || catchingUp() ? 'good' : NOT_ISSUED;
    }
    if (!isIntermediate(issuer.der)) return 'good';
    // RFC 6960 §2.2: a certificate its CA has no record of issuing may be answered `revoked`.
    if (!issuedByConsensus(certificate.der)) return NOT_ISSUED;
    const serial = readTbs(splitCertificate(certificate.der).tbs).serial;
    const revoked = reader.revocation(serial);
    if (revoked === null) return 'good';
    return {
      status: 'revoked',
      reason: REVOCATION_REASONS[revoked.reason] ?? String(revoked.reason),
    };
  };

  const identityCheck: IdentityCheck = ({ identity, leaf, issuer }) => {
    if (identity.role === 'client') return null;
    let trustChain: boolean;
    try {
      trustChain = isIntermediate(issuer.der);
    } catch (error) {
      // Fail closed: without the added intermediates the role rule cannot be applied.
      return `the committed CA state could not be read: ${(error as Error).message}`;
    }
    if (!trustChain) return null;
    const usage = [...(leaf.extendedKeyUsage ?? [])].sort().join(',');
    if (usage === nodeUsage) return null;
    return `a TrustChain certificate claims the ${identity.role} role without the node profile`;
  };

  return { roots: [ca.bundle.root.certificate], revocation, identityCheck };
}

/**
 * The answer for a TrustChain certificate consensus never issued (a leaf one validator signed
 * with its intermediate key outside consensus, or an intermediate the root signed that is not
 * in effect): refused as `revoked` on the wire, with this reason in the refusing side's error.
 */
export const NOT_ISSUED_REASON = 'notIssuedByConsensus';
const NOT_ISSUED: RevocationAnswer = { status: 'revoked', reason: NOT_ISSUED_REASON };

function invalid(
  reason: string,
  message: string,
  extra: Partial<CaValidateResponse> = {},
): CaValidateResponse {
  return {
    valid: false,
    reason,
    message,
    serial: null,
    issuer: null,
    revocation: null,
    transparency: null,
    consensus: null,
    ...extra,
  };
}

export function createCaService(options: CaServiceOptions): CaService {
  const { ca, log, store, logger } = options;
  const falcon = options.falcon ?? defaultFalcon();
  const now = options.now ?? Date.now;
  const moduleState = { get: (key: Uint8Array) => options.state.get(caStateKey(key)) };
  const reader = new CaStateReader(moduleState);
  const view = createIssuerView(ca, falcon);
  const metrics = createCaMetrics(options.registry, () => log.size);
  const maxBlockAgeMs = options.maxBlockAgeMs ?? OCSP_MAX_BLOCK_AGE_MS;
  const freshness = committedBlockFreshness(store.blocks, now, maxBlockAgeMs);

  const proven = (
    name: CaProvenAnswer['query'],
    data: Uint8Array,
    height?: number,
  ): CaProvenAnswer => {
    const response = options.query(caQuery(name, data, height));
    if (response.proof === undefined) {
      throw new StoqError(StoqErrorCode.INTERNAL, 'the ca query answered without a proof');
    }
    return {
      query: name,
      data,
      height: response.height,
      value: response.value,
      proof: response.proof,
      stateRoot: response.stateRoot,
    };
  };

  /**
   * A genesis bootstrap certificate (src/trustchain/ca-module/genesis.ts) has no issuance
   * extensions, so the offline verifier stops at the missing issuance reference, after the
   * chain, validity, purpose and name-constraint checks passed. When committed state holds it
   * as a genesis certificate, its reference is height 1 and the record's stand-in txHash
   * (SHA-256 of the DER, no transaction's); null otherwise.
   */
  const genesisReference = (
    certificate: Uint8Array,
  ): {
    validator: string;
    reference: { chainId: string; height: number; txHash: Uint8Array };
  } | null => {
    if (!lacksIssuanceExtensions(certificate)) return null;
    const serial = readTbs(splitCertificate(certificate).tbs).serial;
    if (serial.length !== 16 || reader.genesisCertificate(serial) === null) return null;
    const record = reader.certificate(serial);
    if (record === null || !isGenesisCertificateRecord(record)) return null;
    if (toHex(record.der) !== toHex(certificate)) return null;
    return {
      validator: record.issuer,
      reference: { chainId: ca.chainId, height: record.publishedAt, txHash: record.txHash },
    };
  };

  /**
   * The tree size a `validate` answer proves its log entry at: the size of the consensus tree
   * head (`ca/ct/head`) at `height`, the height of its proven answers, once the log holds it —
   * so the caller can tie the root to that committed head (`checkValidateAnswer`) — else (the
   * log is a moment behind its commits) the log's latest size; null for an empty log.
   */
  const transparencySize = (height: number | null): number | null => {
    const head = options.query(caQuery('treeHead', new Uint8Array(0), height ?? undefined));
    const committed = decodeTreeHead(head.value).range.size;
    if (committed > 0 && log.size >= committed) return committed;
    return log.latestTreeHead()?.treeSize ?? null;
  };

  /** The log's signed note for the head at `size`; null when none (or no head ends there). */
  const signedCheckpointAt = (size: number): string | null => {
    try {
      return log.signedCheckpoint(size) ?? null;
    } catch (error) {
      if (error instanceof CtError) return null;
      throw error;
    }
  };

  const validate = (
    certificate: Uint8Array,
    purpose: 'serverAuth' | 'clientAuth' | 'any' = 'any',
  ): CaValidateResponse => {
    if (freshness.freshBlockTime() === null) {
      const time = freshness.committedTime();
      throw new StoqError(
        StoqErrorCode.UNAVAILABLE,
        time === null
          ? 'this node has no committed block to answer from'
          : `this node's last committed block is ${Math.round((now() - time) / 1000)} s old, more than ${maxBlockAgeMs / 1000} s: it may not have seen a revocation`,
        { reason: 'stale', maxBlockAgeSeconds: maxBlockAgeMs / 1000 },
      );
    }
    let verified: {
      readonly validator: string;
      readonly reference: {
        readonly chainId: string;
        readonly height: number;
        readonly txHash: Uint8Array;
      };
    };
    try {
      verified = verifyIssuedCertificate(certificate, view.bundle(moduleState), {
        now: new Date(now()),
        purpose,
        falcon,
      });
    } catch (error) {
      if (error instanceof CaError && error.code === CaErrorCode.VERIFY_FAILED) {
        const genesis =
          error.detail.reason === 'missing_issuance_reference'
            ? genesisReference(certificate)
            : null;
        if (genesis === null) return invalid(String(error.detail.reason), error.message);
        verified = genesis;
      } else {
        throw error;
      }
    }
    const serial = readTbs(splitCertificate(certificate).tbs).serial;
    const base = { serial, issuer: verified.validator };
    // The consensus reference, as proven answers at one height.
    const certificateAnswer = proven('certificate', serial);
    const revocationAnswer = proven('revocation', serial, certificateAnswer.height ?? undefined);
    const record =
      certificateAnswer.value === null
        ? null
        : new CaStateReader({ get: () => certificateAnswer.value }).certificate(serial);
    const consensus = {
      chainId: verified.reference.chainId,
      height: verified.reference.height,
      txHash: verified.reference.txHash,
      publishedAt: record?.publishedAt ?? null,
      answers: [certificateAnswer, revocationAnswer],
    };
    if (record === null || toHex(record.der) !== toHex(certificate)) {
      return invalid('not_published', 'the committed state does not hold this certificate', {
        ...base,
        consensus,
      });
    }
    const revocationRecord =
      revocationAnswer.value === null
        ? null
        : new CaStateReader({ get: () => revocationAnswer.value }).revocation(serial);
    const revocation =
      revocationRecord === null
        ? { status: 'good' as const, reason: null, time: null, height: null }
        : {
            status: 'revoked' as const,
            reason: revocationRecord.reason,
            time: revocationRecord.time,
            height: revocationRecord.height,
          };
    // Transparency: the entry ca-node.ts appended for this certificate.
    const published = reader.published(record.publishedAt);
    let transparency: CaValidateResponse['transparency'] = null;
    const treeSize = transparencySize(certificateAnswer.height);
    if (published !== null && treeSize !== null) {
      const hash = leafHash(
        encodeMerkleTreeLeaf({
          timestamp: published.time,
          entry: { type: 'x509', certificate },
        }),
      );
      try {
        const leafIndex = log.findLeafIndex(hash, treeSize);
        transparency = {
          treeSize,
          leafIndex,
          auditPath: log.inclusionProof(leafIndex, treeSize),
          rootHash: log.rootAt(treeSize),
          checkpoint: signedCheckpointAt(treeSize),
        };
      } catch (error) {
        if (!(error instanceof CtError)) throw error;
      }
    }
    const extra = { ...base, revocation, transparency, consensus };
    if (revocationRecord !== null) {
      const name = REVOCATION_REASONS[revocationRecord.reason] ?? String(revocationRecord.reason);
      return invalid('revoked', `revoked at height ${revocationRecord.height} (${name})`, extra);
    }
    if (transparency === null) {
      return invalid('not_in_log', "the certificate is not in this node's CT log yet", extra);
    }
    return { valid: true, reason: null, message: null, ...extra };
  };

  const ctFailure = (error: unknown): never => {
    if (error instanceof CtError) {
      throw new StoqError(StoqErrorCode.INVALID_ARGUMENT, error.message, { code: error.code });
    }
    throw error;
  };

  let corroborator: Corroborator | null = null;
  const corroborated = createCorroborateCounter(options.registry);

  const source: CaRpcSource = {
    // Admission of issue/renew/revoke: a refusal is counted by its code (nothing was written).
    submit: async (tx, caller) => {
      const result = await options.submit(tx, caller);
      if (!result.ok) metrics.refused(result.code);
      return result;
    },
    corroborate: async (request, caller, signal) => {
      try {
        if (corroborator === null) {
          throw new StoqError(
            StoqErrorCode.UNAVAILABLE,
            'this node does not validate ACME challenges (no acme configuration)',
          );
        }
        const attestation = await corroborator(request, caller, signal);
        corroborated(decodeDcvAttestation(attestation).body.ok ? 'ok' : 'failed');
        return attestation;
      } catch (error) {
        corroborated('refused');
        throw error;
      }
    },
    query: options.query,
    validate: (request) => validate(request.certificate, request.purpose),
    sth: () => {
      const head = log.latestTreeHead();
      if (head === undefined) {
        throw new StoqError(StoqErrorCode.UNAVAILABLE, 'the CT log is empty', {
          reason: 'empty_log',
        });
      }
      const signed = log.latestSignedCheckpoint();
      return {
        treeSize: head.treeSize,
        timestamp: head.timestamp,
        rootHash: head.rootHash,
        checkpoint: signed?.treeHead.treeSize === head.treeSize ? signed.note : null,
      };
    },
    inclusionProof: (hash, treeSize) => {
      const size = treeSize ?? log.size;
      if (size < 1 || size > log.size) {
        throw new StoqError(StoqErrorCode.INVALID_ARGUMENT, `treeSize must be in 1..${log.size}`);
      }
      try {
        const leafIndex = log.findLeafIndex(hash, size);
        return { leafIndex, treeSize: size, auditPath: log.inclusionProof(leafIndex, size) };
      } catch (error) {
        if (error instanceof CtError && /leaf/i.test(error.code)) {
          throw new StoqError(StoqErrorCode.NOT_FOUND, error.message);
        }
        return ctFailure(error);
      }
    },
    consistencyProof: (first, second) => {
      if (first > second || second > log.size) {
        throw new StoqError(
          StoqErrorCode.INVALID_ARGUMENT,
          `need 1 <= first <= second <= ${log.size}`,
        );
      }
      try {
        return log.consistencyProof(first, second);
      } catch (error) {
        return ctFailure(error);
      }
    },
  };
  if (options.rpc !== null) {
    registerCaRpc(options.rpc, source, (kind) => metrics.proofRequest(kind), options.rpcOptions);
  }

  const blockTimes = new Map<number, number>();
  const blockTime = (height: number): number | null => {
    const cached = blockTimes.get(height);
    if (cached !== undefined) return cached;
    const stored = store.blocks.byHeight(height);
    if (stored === null) return null;
    const time = decodeBlock(stored.bytes).header.time;
    blockTimes.set(height, time);
    if (blockTimes.size > 1024) blockTimes.delete(blockTimes.keys().next().value as number);
    return time;
  };

  const committed = (height: number): void => {
    try {
      const stored = store.blocks.byHeight(height);
      if (stored !== null) {
        const block = decodeBlock(stored.bytes);
        blockTimes.set(height, block.header.time);
        for (const bytes of block.transactions) {
          const envelope = decodeTransaction(bytes);
          if (envelope.module !== CA_MODULE_NAME) continue;
          const applied = storedReceipt(store, envelope.txHash)?.code === 0;
          let body;
          try {
            body = decodeCaBody(envelope.body);
          } catch {
            continue;
          }
          if (body.op === 'request' || body.op === 'renew') {
            metrics.issuance(applied ? 'accepted' : 'refused');
          } else if (body.op === 'revoke' && applied) {
            metrics.revocation(REVOCATION_REASONS[body.reason] ?? String(body.reason));
          }
        }
      }
      const published = reader.published(height);
      if (published !== null) {
        metrics.issuance('published', published.serials.length);
        for (const serial of published.serials) {
          const txHash = reader.issuanceTx(serial);
          const issuance = txHash === null ? null : reader.issuance(txHash);
          const requested = issuance === null ? null : blockTime(issuance.height);
          if (requested !== null) metrics.latency(Math.max(0, published.time - requested) / 1000);
        }
      }
    } catch (error) {
      logger.error('ca metrics update failed', {
        component: 'ca',
        height,
        error: (error as Error).message,
      });
    }
  };

  const { revocation } = createCaStoqTrust({ ca, state: options.state });

  return {
    committed,
    revocation,
    validate,
    metrics,
    setCorroborator: (next) => {
      corroborator = next;
    },
  };
}
