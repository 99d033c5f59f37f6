import type { GenesisDocument } from '../consensus/genesis.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import type { QueryResponse } from '../consensus/app.js';
import { sha256 } from '../crypto/hash.js';
import { defaultFalcon, type FalconBackend } from '../crypto/falcon.js';
import { leafHash } from '../crypto/merkle.js';
import type { CaRpcService } from '../faces/ca-rpc.js';
import { OCSP_MAX_BLOCK_AGE_MS } from '../faces/ocsp-http.js';
import { StoqError, StoqErrorCode } from '../stoq/index.js';
import type { RpcClient } from '../stoq/rpc/client.js';
import {
  CertificateProofError,
  CertificateProofErrorCode,
  verifyCertificateProof,
  type CertificateProof,
  type ProvenValue,
  type VerifiedCertificateProof,
} from '../trustchain/ca-module/certificate-proof.js';
import { caQuery } from '../trustchain/ca-module/client.js';
import { certificateLogLeaf } from '../trustchain/ca-module/tree-head.js';
import { decodeCertificateRecord } from '../trustchain/ca-module/state.js';
import { blockTimeAndAge } from './block-age.js';
import { certificateSerialOf, ctTimestamp, fetchQuorumCheckpoint } from './cert-tools.js';
import { CliError } from './cli-error.js';

/**
 * Fetching a certificate proof (trustchain/ca-module/certificate-proof.ts) from a node: the
 * quorum checkpoint at its latest committed height, the certificate's record and revocation
 * state proofs at that same height, and the audit path of its log entry at the checkpoint's
 * tree size from the node's CT log (the `hypermesh.trustchain.ca.v1` `inclusionProof` RPC).
 * The node is not trusted: the assembled proof is verified against the genesis before it is
 * returned, so what a caller writes is what `cert verify --proof` accepts.
 */

/** A node's CT log: the audit path of `leafHash` in its tree of `treeSize` entries. */
export type InclusionProofSource = (
  leafHash: Uint8Array,
  treeSize: number,
) => Promise<{ leafIndex: number; treeSize: number; auditPath: Uint8Array[] }>;

/** How often a log that is behind the consensus head is asked again. */
const POLL_MS = 200;

/**
 * The oldest latest block a proof is made from by default: the default of the nodes'
 * `ca.maxBlockAgeSeconds`, past which a node answers no OCSP, CRL or `validate` — it may not
 * have seen a revocation the cluster has committed (docs/ca.md, "OCSP").
 */
export const DEFAULT_PROOF_MAX_BLOCK_AGE_MS = OCSP_MAX_BLOCK_AGE_MS;

/**
 * The node's latest committed block is older than the caller accepts: no proof was made.
 * `reason` is the message without the advice to `cert proof`'s caller.
 */
export class StaleBlockError extends CliError {
  constructor(
    readonly height: number,
    readonly blockTime: number,
    readonly reason: string,
  ) {
    super(`${reason}; ask another --node, or accept the age with --max-block-age SECONDS`, 1);
    this.name = 'StaleBlockError';
  }
}

/**
 * The refusal of `cert request` / `cert renew` when the certificate is issued and written to
 * `cert` but its proof could not be made (`error`): it says first that the certificate WAS
 * issued — a script must not request it again — then how to fetch the proof later (`hint`: the
 * --cluster/--node options to repeat).
 */
export function issuedWithoutProofError(
  error: Error,
  issued: { readonly cert: string; readonly hint: string },
  file: string,
): CliError {
  const fetch = `hypermesh cert proof ${issued.cert} --out ${file}${issued.hint}`;
  const head = `the certificate WAS issued and written to ${issued.cert} (do not request it again); only its proof is not written`;
  if (error instanceof StaleBlockError) {
    return new CliError(
      `${head}: ${error.reason}; fetch the proof later with "${fetch}" once the node has caught up, ` +
        `from another --node, or with --max-block-age SECONDS to accept the age`,
      1,
    );
  }
  return new CliError(`${head}: ${error.message}; fetch it with "${fetch}"`, 1);
}

function provenAnswer(answer: QueryResponse, height: number, what: string): ProvenValue {
  if (answer.proof === undefined || answer.height !== height) {
    throw new CliError(
      `the node answered the ${what} query at height ${answer.height ?? '-'} ${answer.proof === undefined ? 'without a proof' : `instead of ${height}`}`,
      1,
    );
  }
  return { value: answer.value, proof: answer.proof };
}

/**
 * Asks the node's log for the entry's audit path at `treeSize`, waiting (until `deadline`)
 * while the log is behind the consensus tree head — it appends after the commit.
 */
async function auditPathAt(
  source: InclusionProofSource,
  leaf: Uint8Array,
  treeSize: number,
  deadline: number,
): Promise<{ leafIndex: number; auditPath: Uint8Array[] }> {
  for (;;) {
    try {
      const answer = await source(leaf, treeSize);
      if (answer.treeSize !== treeSize) {
        throw new CliError(
          `the node's log answered for tree size ${answer.treeSize}, not ${treeSize}`,
          1,
        );
      }
      return answer;
    } catch (error) {
      const behind = error instanceof StoqError && error.code === StoqErrorCode.INVALID_ARGUMENT;
      if (!behind || Date.now() >= deadline) {
        if (error instanceof StoqError) {
          throw new CliError(
            `the node's CT log has no audit path for this certificate at tree size ${treeSize}: ${error.code}: ${error.message}`,
            1,
          );
        }
        throw error;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * The proof for `certificate` (DER) from the node behind `client` (which must check answers
 * against committed roots, as operator sessions' clients do) and its CT log `inclusionProof`.
 * Throws CliError (exit 1) when the cluster has not published it, the node's log lacks it, or
 * anything the node sent does not verify; a revoked certificate gets no proof. The proof says
 * "not revoked as of block H", H the node's latest committed block: a node that is behind (or
 * lies by omission, answering an old height) would make it stale, so a block older than
 * `maxBlockAgeMs` (default `DEFAULT_PROOF_MAX_BLOCK_AGE_MS`) by `now` is refused.
 */
export async function fetchCertificateProof(options: {
  readonly client: NodeRpcClient;
  readonly genesis: GenesisDocument;
  readonly certificate: Uint8Array;
  readonly inclusionProof: InclusionProofSource;
  readonly timeoutMs: number;
  readonly falcon?: FalconBackend;
  readonly maxBlockAgeMs?: number;
  /** Wall clock (ms), for the block's age. */
  readonly now?: () => number;
}): Promise<{ proof: CertificateProof; verified: VerifiedCertificateProof }> {
  const { client, genesis, certificate } = options;
  const falcon = options.falcon ?? defaultFalcon();
  const now = options.now ?? Date.now;
  const deadline = Date.now() + options.timeoutMs;
  const serial = certificateSerialOf(certificate);
  const { checkpoint, verified: head } = await fetchQuorumCheckpoint(client, genesis, falcon);
  const height = checkpoint.header.height;
  const maxAgeMs = options.maxBlockAgeMs ?? DEFAULT_PROOF_MAX_BLOCK_AGE_MS;
  if (now() - head.blockTime > maxAgeMs) {
    throw new StaleBlockError(
      height,
      head.blockTime,
      `the node's latest committed block ${height} is from ${blockTimeAndAge(head.blockTime, now())}, ` +
        `older than ${maxAgeMs / 1000} s: a proof "not revoked as of block ${height}" would miss any later revocation ` +
        `(the node may be behind or cut off)`,
    );
  }
  const record = provenAnswer(
    await client.query(caQuery('certificate', serial, height)),
    height,
    'certificate',
  );
  const revocation = provenAnswer(
    await client.query(caQuery('revocation', serial, height)),
    height,
    'revocation',
  );
  if (record.value === null) {
    throw new CliError(
      `as of block ${height} the cluster has published no certificate with serial ${Buffer.from(serial).toString('hex')}`,
      1,
    );
  }
  let publishedAt: number;
  try {
    publishedAt = decodeCertificateRecord(record.value).publishedAt;
  } catch (error) {
    throw new CliError(
      `the node's certificate record does not decode: ${(error as Error).message}`,
      1,
    );
  }
  const timestamp = await ctTimestamp(client, publishedAt, height);
  const leaf = leafHash(certificateLogLeaf(certificate, timestamp));
  const { leafIndex, auditPath } = await auditPathAt(
    options.inclusionProof,
    leaf,
    head.size,
    deadline,
  );
  const proof: CertificateProof = {
    chainId: genesis.chainId,
    serial,
    certificateSha256: sha256(certificate),
    checkpoint,
    record,
    revocation,
    log: { leafIndex, timestamp, auditPath },
  };
  try {
    return { proof, verified: verifyCertificateProof(certificate, proof, genesis, falcon) };
  } catch (error) {
    if (error instanceof CertificateProofError) {
      if (error.code === CertificateProofErrorCode.REVOKED) {
        throw new CliError(`no proof: the certificate is ${error.message}`, 1);
      }
      throw new CliError(
        `the node's answers do not make a valid proof: ${error.message} [${error.code}]`,
        1,
      );
    }
    throw error;
  }
}

/** `InclusionProofSource` over a `hypermesh.trustchain.ca.v1` client of one node. */
export function caRpcInclusionProof(rpc: RpcClient<CaRpcService>): InclusionProofSource {
  return (hash, treeSize) => rpc.call('inclusionProof', { leafHash: hash, treeSize });
}

/**
 * The lines `cert verify --proof` and `cert proof` print for a verified proof; the time of the
 * block it holds as of and its age at `now` (ms) say how old its "not revoked" is.
 */
export function describeCertificateProof(
  verified: VerifiedCertificateProof,
  now: number = Date.now(),
): string[] {
  const { checkpoint } = verified;
  return [
    `consensus: published at height ${verified.publishedAt} by ${verified.issuer}, not revoked as of block ${checkpoint.height} ` +
      `(${blockTimeAndAge(checkpoint.blockTime, now)}); ` +
      `block ${checkpoint.height} committed by ${checkpoint.signers.join(', ')} ` +
      `(${checkpoint.falconSignatures} FALCON-1024 signatures, more than 2/3 of the genesis power)`,
    `transparency: leaf ${verified.leafIndex} (timestamp ${verified.timestamp}) of tree size ${checkpoint.size}, ` +
      `root ${Buffer.from(checkpoint.root).toString('hex')}, the quorum-signed tree head of ${checkpoint.origin}`,
  ];
}
