import { z } from 'zod';
import { HyperMeshError } from '../../codec/error.js';
import { parseInput } from '../../codec/schema.js';
import type { GenesisDocument } from '../../consensus/genesis.js';
import { bytesEqual, fromHex, toHex } from '../../crypto/bytes.js';
import type { FalconBackend } from '../../crypto/falcon.js';
import { sha256 } from '../../crypto/hash.js';
import { leafHash, verifyInclusion } from '../../crypto/merkle.js';
import { parseCertificate } from '../../crypto/x509.js';
import { decodeStateProof, verifyStateProof } from '../../storage/index.js';
import {
  QuorumCheckpointError,
  QuorumCheckpointErrorCode,
  quorumCheckpointFromJson,
  quorumCheckpointJson,
  verifyQuorumCheckpoint,
  type QuorumCheckpoint,
  type QuorumCheckpointJson,
  type VerifiedQuorumCheckpoint,
} from './quorum-checkpoint.js';
import {
  caStateKey,
  certificateKey,
  decodeCertificateRecord,
  decodeRevocation,
  revocationKey,
  type CertificateRecord,
  type RevocationRecord,
} from './state.js';
import { certificateLogLeaf } from './tree-head.js';

/**
 * A certificate proof (docs/ca.md, "Offline verification"): what shows, with the genesis
 * document alone, that consensus published a certificate and that the transparency log holds
 * it. One quorum checkpoint (quorum-checkpoint.ts: block H's header, its commit, the state
 * proof of `ca/ct/head`), and under the same header's `appStateRoot` the state proofs of the
 * certificate's record (`ca/cert/<serial>`: its DER, publication height, issuer) and of its
 * revocation (`ca/rev/<serial>`, absent when not revoked as of H); then the RFC 9162 §2.1.3
 * inclusion proof of its log entry (`x509_entry`, timestamp = the publishing block's time) in
 * the proven tree head. Nothing in it is trusted: every claim is re-derived.
 */
export const CERTIFICATE_PROOF_FORMAT = 'hypermesh-certificate-proof';
export const CERTIFICATE_PROOF_VERSION = 1;
/** The largest proof file read: the checkpoint's header and commit dominate (quorum-checkpoint.ts bounds). */
export const MAX_CERTIFICATE_PROOF_BYTES = 24 * 1024 * 1024;

export enum CertificateProofErrorCode {
  /** Not the JSON form (format, version, field, hex, sizes), or a part does not decode. */
  MALFORMED = 'CERT_PROOF_MALFORMED',
  /** The proof, its header or its log is of another chain than the genesis. */
  WRONG_CHAIN = 'CERT_PROOF_WRONG_CHAIN',
  /** Block H is decided by a validator set other than the genesis set. */
  VALIDATOR_SET_CHANGED = 'CERT_PROOF_VALIDATOR_SET_CHANGED',
  /** The commit does not certify the header (consensus proof); `detail.reason` says why. */
  COMMIT_INVALID = 'CERT_PROOF_COMMIT_INVALID',
  /** A state proof does not open its key to the stated value under the header's state root. */
  STATE_PROOF_INVALID = 'CERT_PROOF_STATE_PROOF_INVALID',
  /** The proof names another certificate (serial or SHA-256 of the DER). */
  OTHER_CERTIFICATE = 'CERT_PROOF_OTHER_CERTIFICATE',
  /** As of block H the chain holds no such certificate under its serial (or another one). */
  NOT_PUBLISHED = 'CERT_PROOF_NOT_PUBLISHED',
  /** The certificate's log entry does not lead to the proven tree head's root. */
  NOT_INCLUDED = 'CERT_PROOF_NOT_INCLUDED',
  /** As of block H the certificate is revoked (`detail`: reason, height). */
  REVOKED = 'CERT_PROOF_REVOKED',
}

export class CertificateProofError extends HyperMeshError<CertificateProofErrorCode> {}

const C = CertificateProofErrorCode;

/** A state proof under the checkpoint's header: the stored value (null: absent) and its proof. */
export interface ProvenValue {
  readonly value: Uint8Array | null;
  readonly proof: Uint8Array;
}

export interface CertificateProof {
  readonly chainId: string;
  readonly serial: Uint8Array;
  readonly certificateSha256: Uint8Array;
  readonly checkpoint: QuorumCheckpoint;
  /** The claims the checkpoint's JSON states beside it (checked when present). */
  readonly checkpointClaims?: QuorumCheckpointJson;
  /** The publication height and issuer the file states (checked against the record when present). */
  readonly recordClaims?: { readonly publishedAt: number; readonly issuer: string };
  readonly record: ProvenValue;
  readonly revocation: ProvenValue;
  readonly log: {
    readonly leafIndex: number;
    readonly timestamp: number;
    readonly auditPath: readonly Uint8Array[];
  };
}

/** What a valid proof establishes for the certificate. */
export interface VerifiedCertificateProof {
  readonly checkpoint: VerifiedQuorumCheckpoint;
  readonly serial: string;
  readonly issuer: string;
  readonly publishedAt: number;
  readonly leafIndex: number;
  readonly timestamp: number;
}

const hex = (what: string, max: number, length?: number) =>
  z
    .string()
    .max(2 * max)
    .regex(/^([0-9a-f]{2})*$/, `${what} must be lowercase hex`)
    .refine((s) => length === undefined || s.length === 2 * length, `${what}: ${length} bytes`);
const uint = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
/** A certificate record holds one DER certificate (with a FALCON key and batch signature: a few KiB). */
const MAX_RECORD_BYTES = 64 * 1024;
const MAX_PROOF_BYTES = 64 * 1024;
const proven = (what: string) =>
  z.strictObject({
    value: hex(`${what}.value`, MAX_RECORD_BYTES).nullable(),
    proof: hex(`${what}.proof`, MAX_PROOF_BYTES),
  });

const jsonSchema = z.strictObject({
  format: z.literal(CERTIFICATE_PROOF_FORMAT),
  version: z.literal(CERTIFICATE_PROOF_VERSION),
  chainId: z.string().min(1).max(64),
  serial: hex('serial', 20).min(2),
  certificateSha256: hex('certificateSha256', 32, 32),
  /** For people: the publication height and issuer the record states (re-derived). */
  publishedAt: uint,
  issuer: z.string().max(64),
  /** Parsed by quorum-checkpoint.ts's own strict schema. */
  checkpoint: z.unknown(),
  certificateRecord: proven('certificateRecord'),
  revocation: proven('revocation'),
  log: z.strictObject({
    leafIndex: uint,
    timestamp: uint,
    // A tree of at most 2^64 leaves has audit paths of at most 64 hashes.
    auditPath: z.array(hex('log.auditPath[]', 32, 32)).max(64),
  }),
});

type CertificateProofJson = z.infer<typeof jsonSchema>;

function malformed(message: string, cause?: unknown): never {
  throw new CertificateProofError(
    C.MALFORMED,
    message,
    {},
    cause === undefined ? undefined : { cause },
  );
}

/** The serial of a DER certificate as bytes (the record key's serial). */
function serialOf(certificate: Uint8Array): Uint8Array {
  return fromHex(parseCertificate(certificate).serialNumber.toLowerCase());
}

function decodedRecord(value: Uint8Array): CertificateRecord {
  try {
    return decodeCertificateRecord(value);
  } catch (error) {
    return malformed(`the certificate record does not decode: ${(error as Error).message}`, error);
  }
}

/**
 * The JSON file `cert request|renew|proof` write. `publishedAt` and `issuer` are read from the
 * record (for people); the verifier re-derives them.
 */
export function certificateProofToJson(proof: CertificateProof): string {
  const record = proof.record.value === null ? null : decodedRecord(proof.record.value);
  const json: CertificateProofJson = {
    format: CERTIFICATE_PROOF_FORMAT,
    version: CERTIFICATE_PROOF_VERSION,
    chainId: proof.chainId,
    serial: toHex(proof.serial),
    certificateSha256: toHex(proof.certificateSha256),
    publishedAt: record?.publishedAt ?? 0,
    issuer: record?.issuer ?? '',
    checkpoint: quorumCheckpointJson(proof.checkpoint),
    certificateRecord: provenJson(proof.record),
    revocation: provenJson(proof.revocation),
    log: {
      leafIndex: proof.log.leafIndex,
      timestamp: proof.log.timestamp,
      auditPath: proof.log.auditPath.map(toHex),
    },
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}

function provenJson(value: ProvenValue): CertificateProofJson['certificateRecord'] {
  return { value: value.value === null ? null : toHex(value.value), proof: toHex(value.proof) };
}

function provenOf(json: CertificateProofJson['certificateRecord']): ProvenValue {
  return { value: json.value === null ? null : fromHex(json.value), proof: fromHex(json.proof) };
}

/** Parses the JSON form; throws `MALFORMED` naming the field. Nothing is verified here. */
export function parseCertificateProof(text: string): CertificateProof {
  if (text.length > MAX_CERTIFICATE_PROOF_BYTES) {
    malformed(`the proof is larger than ${MAX_CERTIFICATE_PROOF_BYTES} bytes`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return malformed(`not JSON: ${(error as Error).message}`, error);
  }
  let json: CertificateProofJson;
  try {
    json = parseInput(jsonSchema, raw, 'proof');
  } catch (error) {
    return malformed((error as Error).message, error);
  }
  let parsed;
  try {
    parsed = quorumCheckpointFromJson(json.checkpoint, 'proof.checkpoint');
  } catch (error) {
    return malformed((error as Error).message, error);
  }
  return {
    chainId: json.chainId,
    serial: fromHex(json.serial),
    certificateSha256: fromHex(json.certificateSha256),
    checkpoint: parsed.checkpoint,
    checkpointClaims: parsed.claims,
    recordClaims: { publishedAt: json.publishedAt, issuer: json.issuer },
    record: provenOf(json.certificateRecord),
    revocation: provenOf(json.revocation),
    log: {
      leafIndex: json.log.leafIndex,
      timestamp: json.log.timestamp,
      auditPath: json.log.auditPath.map(fromHex),
    },
  };
}

const CHECKPOINT_CODES: Record<QuorumCheckpointErrorCode, CertificateProofErrorCode> = {
  [QuorumCheckpointErrorCode.MALFORMED]: C.MALFORMED,
  [QuorumCheckpointErrorCode.WRONG_CHAIN]: C.WRONG_CHAIN,
  [QuorumCheckpointErrorCode.VALIDATOR_SET_CHANGED]: C.VALIDATOR_SET_CHANGED,
  [QuorumCheckpointErrorCode.INVALID_COMMIT]: C.COMMIT_INVALID,
  [QuorumCheckpointErrorCode.INVALID_STATE_PROOF]: C.STATE_PROOF_INVALID,
  [QuorumCheckpointErrorCode.CLAIM_MISMATCH]: C.MALFORMED,
  [QuorumCheckpointErrorCode.UNSIGNED_SERVED_CHECKPOINT]: C.MALFORMED,
};

function openedUnder(
  stateRoot: Uint8Array,
  key: Uint8Array,
  proven: ProvenValue,
  what: string,
  height: number,
): void {
  let ok: boolean;
  try {
    ok = verifyStateProof(stateRoot, caStateKey(key), proven.value, decodeStateProof(proven.proof));
  } catch (error) {
    throw new CertificateProofError(
      C.STATE_PROOF_INVALID,
      `the ${what} state proof does not decode: ${(error as Error).message}`,
      { what },
      { cause: error },
    );
  }
  if (!ok) {
    throw new CertificateProofError(
      C.STATE_PROOF_INVALID,
      `the ${what} state proof does not open its key to the stated value under block ${height}'s state root`,
      { what },
    );
  }
}

/**
 * Verifies `proof` for `certificate` (DER) against the genesis document (its chain id, validator
 * set, Ed25519 and FALCON-1024 keys, `requirePq`). Throws `CertificateProofError` for the first
 * failing step, in this order: the certificate it names, the chain, the checkpoint (validator
 * set, commit, tree head state proof, claims), the record and revocation state proofs, the record
 * (this certificate, byte for byte), the log inclusion, the revocation.
 */
export function verifyCertificateProof(
  certificate: Uint8Array,
  proof: CertificateProof,
  genesis: GenesisDocument,
  falcon: FalconBackend,
): VerifiedCertificateProof {
  let serial: Uint8Array;
  try {
    serial = serialOf(certificate);
  } catch (error) {
    return malformed(`the certificate does not parse: ${(error as Error).message}`, error);
  }
  if (!bytesEqual(proof.serial, serial)) {
    throw new CertificateProofError(
      C.OTHER_CERTIFICATE,
      `the proof is for certificate ${toHex(proof.serial)}, not ${toHex(serial)}`,
      { proofSerial: toHex(proof.serial), serial: toHex(serial) },
    );
  }
  if (!bytesEqual(proof.certificateSha256, sha256(certificate))) {
    throw new CertificateProofError(
      C.OTHER_CERTIFICATE,
      `the proof is for another certificate with serial ${toHex(serial)} (SHA-256 ${toHex(proof.certificateSha256)}, not ${toHex(sha256(certificate))})`,
      { serial: toHex(serial) },
    );
  }
  if (proof.chainId !== genesis.chainId) {
    throw new CertificateProofError(
      C.WRONG_CHAIN,
      `the proof is for chain ${JSON.stringify(proof.chainId)}, not ${JSON.stringify(genesis.chainId)}`,
      { chainId: proof.chainId },
    );
  }
  let checkpoint: VerifiedQuorumCheckpoint;
  try {
    checkpoint = verifyQuorumCheckpoint(proof.checkpoint, genesis, falcon, proof.checkpointClaims);
  } catch (error) {
    if (error instanceof QuorumCheckpointError) {
      throw new CertificateProofError(
        CHECKPOINT_CODES[error.code],
        `checkpoint: ${error.message}`,
        { ...error.detail, checkpoint: error.code },
        { cause: error },
      );
    }
    throw error;
  }
  const { header } = proof.checkpoint;
  openedUnder(
    header.appStateRoot,
    certificateKey(serial),
    proof.record,
    'certificate record',
    header.height,
  );
  openedUnder(
    header.appStateRoot,
    revocationKey(serial),
    proof.revocation,
    'revocation',
    header.height,
  );
  if (proof.record.value === null) {
    throw new CertificateProofError(
      C.NOT_PUBLISHED,
      `as of block ${header.height} the chain has published no certificate with serial ${toHex(serial)}`,
      { height: header.height },
    );
  }
  const record = decodedRecord(proof.record.value);
  if (!bytesEqual(record.der, certificate)) {
    throw new CertificateProofError(
      C.NOT_PUBLISHED,
      `the chain published another certificate with serial ${toHex(serial)}`,
      { height: header.height },
    );
  }
  const claims = proof.recordClaims;
  if (
    claims !== undefined &&
    (claims.publishedAt !== record.publishedAt || claims.issuer !== record.issuer)
  ) {
    return malformed(
      `the proof states publication at height ${claims.publishedAt} by ${JSON.stringify(claims.issuer)}, the proven record at height ${record.publishedAt} by ${JSON.stringify(record.issuer)}`,
    );
  }
  const { leafIndex, timestamp, auditPath } = proof.log;
  const leaf = leafHash(certificateLogLeaf(certificate, timestamp));
  if (!verifyInclusion(leaf, leafIndex, checkpoint.size, auditPath, checkpoint.root)) {
    throw new CertificateProofError(
      C.NOT_INCLUDED,
      `the log entry (leaf ${leafIndex}, timestamp ${timestamp}) and its audit path do not lead to the quorum tree head (size ${checkpoint.size}, root ${toHex(checkpoint.root)})`,
      { leafIndex, treeSize: checkpoint.size },
    );
  }
  if (proof.revocation.value !== null) {
    let revocation: RevocationRecord;
    try {
      revocation = decodeRevocation(proof.revocation.value);
    } catch (error) {
      return malformed(`the revocation record does not decode: ${(error as Error).message}`, error);
    }
    throw new CertificateProofError(
      C.REVOKED,
      `revoked at height ${revocation.height} (reason ${revocation.reason}), as of block ${header.height}`,
      { reason: revocation.reason, height: revocation.height, time: revocation.time },
    );
  }
  return {
    checkpoint,
    serial: toHex(serial),
    issuer: record.issuer,
    publishedAt: record.publishedAt,
    leafIndex,
    timestamp,
  };
}
