import type { KeyObject } from 'node:crypto';
import { encodeCanonical } from '../../codec/cbor.js';
import { ed25519RawPublicKey, ed25519Sign } from '../../crypto/ed25519.js';
import type { FalconBackend } from '../../crypto/falcon.js';
import { FALCON_ALGORITHM_ID } from '../../crypto/falcon.js';
import type { ProofHeader } from './header.js';
import { encodeProofHeader, hashProofHeader } from './header.js';
import { invalidInput } from './errors.js';

/**
 * Precommit votes as a quorum certificate carries them. A vote signs the canonical CBOR of
 * (chain id, height, round, block hash, timestamp) — Tendermint's canonical vote sign bytes
 * (spec/core/data_structures.md, "Vote" / "CanonicalVote") restricted to precommits for a block.
 * Its timestamp feeds BFT time, so it is inside the signature.
 */
export interface PrecommitVote {
  readonly chainId: string;
  readonly height: number;
  readonly round: number;
  readonly blockHash: Uint8Array;
  /** Milliseconds since the Unix epoch on the voter's clock. */
  readonly timestamp: number;
}

/** A FALCON-1024 signature over the header, tagged with its algorithm (Round 3, not FIPS 206). */
export interface FalconAttestation {
  readonly alg: typeof FALCON_ALGORITHM_ID;
  readonly signature: Uint8Array;
}

/** One validator's precommit inside a quorum certificate (height, round, block are the QC's). */
export interface CommitSignature {
  /** The signer's raw Ed25519 public key. */
  readonly validator: Uint8Array;
  readonly timestamp: number;
  /** Ed25519 over `precommitSignBytes`. */
  readonly signature: Uint8Array;
  readonly falcon?: FalconAttestation;
}

export function precommitSignBytes(vote: PrecommitVote): Uint8Array {
  return encodeCanonical([
    'hypermesh/precommit',
    1,
    vote.chainId,
    vote.height,
    vote.round,
    vote.blockHash,
    vote.timestamp,
  ]);
}

/**
 * What a FALCON attestation signs: the whole encoded header (not only its hash), the round and
 * the timestamp, under its own domain tag and the algorithm id.
 */
export function precommitAttestationBytes(
  header: ProofHeader,
  round: number,
  timestamp: number,
): Uint8Array {
  return encodeCanonical([
    'hypermesh/precommit-attestation',
    1,
    FALCON_ALGORITHM_ID,
    encodeProofHeader(header),
    round,
    timestamp,
  ]);
}

function requireVoteNumbers(round: number, timestamp: number): void {
  if (!Number.isSafeInteger(round) || round < 0) {
    throw invalidInput(`round must be a non-negative integer, got ${round}`);
  }
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw invalidInput(`timestamp must be non-negative integer milliseconds, got ${timestamp}`);
  }
}

/** Signs a precommit for `header` with the validator's Ed25519 key. */
export function signPrecommit(
  header: ProofHeader,
  round: number,
  timestamp: number,
  privateKey: KeyObject,
): CommitSignature {
  requireVoteNumbers(round, timestamp);
  const vote: PrecommitVote = {
    chainId: header.chainId,
    height: header.height,
    round,
    blockHash: hashProofHeader(header),
    timestamp,
  };
  return {
    validator: ed25519RawPublicKey(privateKey),
    timestamp,
    signature: ed25519Sign(precommitSignBytes(vote), privateKey),
  };
}

/** Adds a FALCON-1024 attestation of the header to a precommit (≈ 8–12 ms to sign). */
export async function attestPrecommit(
  precommit: CommitSignature,
  header: ProofHeader,
  round: number,
  falcon: FalconBackend,
  falconSecretKey: Uint8Array,
): Promise<CommitSignature> {
  requireVoteNumbers(round, precommit.timestamp);
  const signed = precommitAttestationBytes(header, round, precommit.timestamp);
  const signature = await falcon.sign(signed, falconSecretKey);
  return { ...precommit, falcon: { alg: FALCON_ALGORITHM_ID, signature } };
}
