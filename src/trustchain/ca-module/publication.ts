import { defaultFalcon, type FalconBackend } from '../../crypto/falcon.js';
import { decodeBatchSignature, encodeBatchSignature, signBatch } from '../ca/batch.js';
import {
  assembleCertificate,
  splitCertificate,
  type CertificateSigner,
} from '../ca/certificate.js';
import { CaError } from '../ca/errors.js';
import {
  checkBlockCertificates,
  prepareBlock,
  preparedCertificateTbs,
  signBlockCertificates,
  type PreparedBlock,
} from '../ca/issue.js';
import { decodeCertificateRequestCached } from '../ca/request.js';
import type { CaPublishTx } from './body.js';
import type { CaIssuer, CaModuleConfig } from './config.js';
import { CaPublicationError } from './errors.js';
import type { CaStateReader } from './state.js';

/**
 * Publication of a block's certificates (docs/ca.md, "Publication"). The issuer rebuilds the
 * batch of block h from the committed state, signs it (one FALCON batch signature, one ECDSA
 * signature per certificate) and submits a `publish` transaction carrying only the signatures:
 * every validator rebuilds each TBSCertificate from the same state, so the certificates follow
 * from the transaction and the state, and `checkBlockCertificates` decides whether they are the
 * ones the requests determine.
 */

/** The pending batch of block `height` as the core's `PreparedBlock`, for `issuer`. */
export function prepareBatch(
  config: CaModuleConfig,
  state: CaStateReader,
  height: number,
  issuer: CaIssuer,
  falcon?: FalconBackend,
): PreparedBlock {
  const batch = state.batch(height);
  if (batch === null) throw new RangeError(`no batch is pending for height ${height}`);
  const items = batch.items.map((txHash) => {
    const record = state.issuance(txHash);
    if (record === null) throw new RangeError(`batch ${height} names a missing issuance`);
    return {
      txHash,
      // Admitted at execution with the same checks: decoding again cannot fail on honest state.
      request: decodeCertificateRequestCached(
        record.request,
        falcon === undefined ? {} : { falcon },
      ),
      lifetimeSeconds: record.lifetimeSeconds,
    };
  });
  return prepareBlock({
    chainId: config.chainId,
    height,
    blockTime: batch.time,
    issuer: issuer.issuer,
    items,
  });
}

/** The certificates a publication determines: each rebuilt TBS with the given signature. */
export function assembleBatchCertificates(
  prepared: PreparedBlock,
  batch: Uint8Array,
  signatures: readonly Uint8Array[],
): Uint8Array[] {
  const batchSignature = decodeBatchSignature(batch);
  return prepared.inputs.map((_, index) =>
    assembleCertificate(
      preparedCertificateTbs(prepared, batchSignature, index),
      signatures[index] ?? new Uint8Array(0),
    ),
  );
}

function invalidPublication(
  message: string,
  detail: Record<string, unknown>,
  cause?: unknown,
): never {
  throw new CaPublicationError(
    'CA_PUBLICATION_INVALID',
    message,
    detail,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * A validator's check of a publication: the signature count, the batch signature (statement and
 * FALCON signature by the issuer's key) and every certificate byte for byte. Returns the
 * certificates. Throws `CaPublicationError` (a module fault: the block is invalid).
 */
export function verifyPublication(
  config: CaModuleConfig,
  state: CaStateReader,
  tx: CaPublishTx,
  issuer: CaIssuer,
  falcon: FalconBackend = defaultFalcon(),
): Uint8Array[] {
  const prepared = prepareBatch(config, state, tx.height, issuer, falcon);
  const detail = { height: tx.height, issuer: issuer.name };
  if (tx.signatures.length !== prepared.inputs.length) {
    invalidPublication(
      `publication of block ${tx.height} carries ${tx.signatures.length} signature(s) for ${prepared.inputs.length} certificate(s)`,
      detail,
    );
  }
  try {
    const certificates = assembleBatchCertificates(prepared, tx.batch, tx.signatures);
    checkBlockCertificates(prepared, decodeBatchSignature(tx.batch), certificates, falcon);
    return certificates;
  } catch (error) {
    if (error instanceof CaError) {
      invalidPublication(
        `publication of block ${tx.height} by ${issuer.name}: ${error.message}`,
        { ...detail, code: error.code, ...error.detail },
        error,
      );
    }
    throw error;
  }
}

/** The issuer's keys: its intermediate signer and the FALCON key its intermediate carries. */
export interface IssuerKeys {
  readonly signer: CertificateSigner;
  readonly falconSecretKey: Uint8Array;
  readonly falcon?: FalconBackend;
}

/** The issuer's side: signs the pending batch of block `height` and returns the `publish` body. */
export async function buildPublication(
  config: CaModuleConfig,
  state: CaStateReader,
  height: number,
  issuer: CaIssuer,
  keys: IssuerKeys,
): Promise<{ readonly tx: CaPublishTx; readonly certificates: readonly Uint8Array[] }> {
  const falcon = keys.falcon ?? defaultFalcon();
  const prepared = prepareBatch(config, state, height, issuer, falcon);
  const batchSignature = await signBatch(prepared.statement, keys.falconSecretKey, falcon);
  const certificates = signBlockCertificates(prepared, batchSignature, keys.signer);
  return {
    tx: {
      op: 'publish',
      height,
      issuer: issuer.name,
      batch: encodeBatchSignature(batchSignature),
      signatures: certificates.map((certificate) => splitCertificate(certificate).signature),
    },
    certificates,
  };
}
