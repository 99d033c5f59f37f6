import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { bytesEqual, concatBytes, fromBase64, toBase64, toHex } from '../../crypto/bytes.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ed25519RawPublicKey,
  ed25519Sign,
  ed25519Verify,
} from '../../crypto/ed25519.js';
import {
  FALCON1024_PUBLIC_KEY_BYTES,
  FALCON_ALGORITHM_ID,
  type FalconBackend,
} from '../../crypto/falcon.js';
import { sha256 } from '../../crypto/hash.js';
import { HASH_SIZE } from '../../crypto/merkle.js';
import { CtError, CtErrorCode } from './errors.js';
import {
  NOTE_SIGNATURE_TYPE,
  formatSignedNote,
  isValidKeyName,
  noteKeyId,
  parseSignedNote,
  type NoteSignature,
} from './note.js';

/**
 * Checkpoints (https://c2sp.org/tlog-checkpoint): the note text `<origin>\n<size>\n<base64
 * root>\n`, signed by several keys at once:
 *
 * - one Ed25519 note signature (type 0x01) per validator — the quorum that makes a tree head
 *   the cluster's, weighted by voting power;
 * - FALCON-1024 lines (type 0xff followed by the identifier `falcon-1024-r3`, see
 *   `falconKeyId`) over the same text, the post-quantum signature per block;
 * - optionally an RFC 6962 TreeHeadSignature (type 0x05, as c2sp.org/static-ct-api defines it)
 *   by an ECDSA P-256 log key, which is what `get-sth` returns and which also signs the
 *   tree head's timestamp.
 *
 * Standard verifiers (Go's sumdb/note, for one) check the Ed25519 lines of the keys they know
 * and ignore the rest.
 */

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Uint8Array;
}

/** An RFC 6962 §3.5 signed tree head's fields. */
export interface TreeHead {
  readonly treeSize: number;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
  readonly rootHash: Uint8Array;
}

export interface Ed25519Cosigner {
  readonly name: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Voting weight, a non-negative safe integer. */
  readonly weight: number;
}

export interface FalconCosigner {
  readonly name: string;
  /** 1793-byte FALCON-1024 (Round 3) public key. */
  readonly publicKey: Uint8Array;
}

export interface Rfc6962LogKey {
  readonly name: string;
  /** ECDSA P-256 public key. */
  readonly publicKey: KeyObject;
}

/** Who may sign a log's checkpoints, and what a valid checkpoint needs. */
export interface CheckpointVerifierSet {
  readonly origin: string;
  readonly cosigners: readonly Ed25519Cosigner[];
  readonly falconKeys?: readonly FalconCosigner[];
  /** Needed whenever `falconKeys` is non-empty. */
  readonly falcon?: FalconBackend;
  readonly rfc6962Keys?: readonly Rfc6962LogKey[];
  /** Refuse a checkpoint without at least one verified FALCON-1024 signature. */
  readonly requireFalcon?: boolean;
}

export interface Rfc6962Signature {
  readonly name: string;
  readonly timestamp: number;
  /** The TLS-encoded DigitallySigned struct, as `get-sth`'s tree_head_signature. */
  readonly digitallySigned: Uint8Array;
}

export interface VerifiedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly signedWeight: number;
  readonly totalWeight: number;
  /** Names of the Ed25519 cosigners whose signatures verified. */
  readonly cosigners: readonly string[];
  readonly falconSigners: readonly string[];
  readonly rfc6962: readonly Rfc6962Signature[];
  /** Signature lines from keys outside the verifier set (ignored). */
  readonly unknownSignatures: number;
}

/** The identifier after the 0xff type byte in a FALCON line's key ID. */
export const FALCON_NOTE_IDENTIFIER = FALCON_ALGORITHM_ID;
const encoder = new TextEncoder();
const MAX_DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

function malformed(message: string): CtError {
  return new CtError(CtErrorCode.MALFORMED_NOTE, message);
}

export function requireOrigin(origin: unknown): string {
  if (!isValidKeyName(origin)) {
    throw new CtError(
      CtErrorCode.INVALID_ORIGIN,
      'origin must be 1..255 characters without spaces, control characters or "+"',
    );
  }
  return origin;
}

/** `<origin>\n<size>\n<base64 root>\n` (tlog-checkpoint "Note text"), no extension lines. */
export function formatCheckpointBody(checkpoint: Checkpoint): string {
  requireOrigin(checkpoint.origin);
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0) {
    throw new CtError(CtErrorCode.OUT_OF_RANGE, 'checkpoint size must be a non-negative integer');
  }
  if (!(checkpoint.root instanceof Uint8Array) || checkpoint.root.length !== HASH_SIZE) {
    throw new CtError(CtErrorCode.INVALID_HASH, 'checkpoint root must be 32 bytes');
  }
  return `${checkpoint.origin}\n${checkpoint.size}\n${toBase64(checkpoint.root)}\n`;
}

/** Parses a checkpoint body strictly: exactly origin, size and root lines (no extensions). */
export function parseCheckpointBody(text: string): Checkpoint {
  const lines = text.split('\n');
  if (lines.length !== 4 || lines[3] !== '') {
    throw malformed('checkpoint body must be exactly three lines: origin, size, root');
  }
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!isValidKeyName(origin)) throw malformed('checkpoint origin is invalid');
  if (!MAX_DECIMAL.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw malformed('checkpoint size must be a decimal without leading zeros');
  }
  let root: Uint8Array;
  try {
    root = fromBase64(rootText);
  } catch {
    throw malformed('checkpoint root is not canonical base64');
  }
  if (root.length !== HASH_SIZE) throw malformed('checkpoint root is not 32 bytes');
  return { origin, size: Number(sizeText), root };
}

export function ed25519KeyId(name: string, publicKey: Uint8Array): number {
  return noteKeyId(name, NOTE_SIGNATURE_TYPE.ed25519, publicKey);
}

/**
 * key ID = SHA-256(name || 0x0A || 0xFF || "falcon-1024-r3" || 1793-byte public key)[:4]: the
 * signed-note recommendation with the "extended" type byte followed by our identifier, which
 * names the FALCON Round-3 format so a FIPS 206 key later gets different IDs.
 */
export function falconKeyId(name: string, publicKey: Uint8Array): number {
  return noteKeyId(
    name,
    NOTE_SIGNATURE_TYPE.extended,
    concatBytes(encoder.encode(FALCON_NOTE_IDENTIFIER), publicKey),
  );
}

/** RFC 6962 §3.2 LogID: SHA-256 of the log key's SubjectPublicKeyInfo DER. */
export function rfc6962LogId(publicKey: KeyObject): Uint8Array {
  return sha256(new Uint8Array(requireP256(publicKey).export({ format: 'der', type: 'spki' })));
}

/** static-ct-api: key ID = SHA-256(name || 0x0A || 0x05 || LogID)[:4]. */
export function rfc6962KeyId(name: string, publicKey: KeyObject): number {
  return noteKeyId(name, NOTE_SIGNATURE_TYPE.rfc6962TreeHead, rfc6962LogId(publicKey));
}

function requireP256(key: KeyObject): KeyObject {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  if (
    publicKey.asymmetricKeyType !== 'ec' ||
    publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw new CtError(CtErrorCode.INVALID_SIGNATURE, 'the RFC 6962 log key must be ECDSA P-256');
  }
  return publicKey;
}

function requireKeyName(name: string): void {
  if (!isValidKeyName(name)) {
    throw new CtError(CtErrorCode.MALFORMED_NOTE, `invalid key name ${JSON.stringify(name)}`);
  }
}

/** One validator's Ed25519 note signature over the checkpoint body. */
export function signCheckpointEd25519(
  body: string,
  name: string,
  privateKey: KeyObject,
): NoteSignature {
  requireKeyName(name);
  parseCheckpointBody(body);
  const keyId = ed25519KeyId(name, ed25519RawPublicKey(privateKey));
  return { name, keyId, signature: ed25519Sign(encoder.encode(body), privateKey) };
}

/** A FALCON-1024 signature line over the checkpoint body (about 8 ms to sign). */
export async function signCheckpointFalcon(
  body: string,
  name: string,
  keys: { readonly publicKey: Uint8Array; readonly secretKey: Uint8Array },
  falcon: FalconBackend,
): Promise<NoteSignature> {
  requireKeyName(name);
  parseCheckpointBody(body);
  const signature = await falcon.sign(encoder.encode(body), keys.secretKey);
  return { name, keyId: falconKeyId(name, keys.publicKey), signature };
}

/** RFC 6962 §3.5: TreeHeadSignature { v1, tree_hash, timestamp, tree_size, sha256_root_hash }. */
export function treeHeadSignatureInput(head: TreeHead): Uint8Array {
  const out = new Uint8Array(2 + 8 + 8 + HASH_SIZE);
  const view = new DataView(out.buffer);
  out[0] = 0; // Version v1
  out[1] = 1; // SignatureType tree_hash
  view.setBigUint64(2, BigInt(head.timestamp));
  view.setBigUint64(10, BigInt(head.treeSize));
  out.set(head.rootHash, 18);
  return out;
}

/** SignatureAndHashAlgorithm { sha256(4), ecdsa(3) } (RFC 5246 §7.4.1.4.1, RFC 6962 §2.1.4). */
const ECDSA_SHA256 = Uint8Array.of(4, 3);

/**
 * The static-ct-api note signature: `uint64 timestamp || DigitallySigned(TreeHeadSignature)`,
 * an ECDSA P-256 signature (DER) as RFC 6962 requires of a log. Its key name must be the origin.
 */
export function signTreeHeadRfc6962(
  head: TreeHead,
  origin: string,
  privateKey: KeyObject,
): NoteSignature {
  requireOrigin(origin);
  const der = new Uint8Array(
    sign('sha256', treeHeadSignatureInput(head), { key: privateKey, dsaEncoding: 'der' }),
  );
  const digitallySigned = new Uint8Array(4 + der.length);
  digitallySigned.set(ECDSA_SHA256, 0);
  new DataView(digitallySigned.buffer).setUint16(2, der.length);
  digitallySigned.set(der, 4);
  const timestamp = new Uint8Array(8);
  new DataView(timestamp.buffer).setBigUint64(0, BigInt(head.timestamp));
  return {
    name: origin,
    keyId: rfc6962KeyId(origin, createPublicKey(privateKey)),
    signature: concatBytes(timestamp, digitallySigned),
  };
}

/** Verifies an RFC 6962 note signature against the checkpoint it signs; undefined if invalid. */
export function openRfc6962Signature(
  checkpoint: Checkpoint,
  signature: Uint8Array,
  publicKey: KeyObject,
): { timestamp: number; digitallySigned: Uint8Array } | undefined {
  if (signature.length < 8 + 4) return undefined;
  const view = new DataView(signature.buffer, signature.byteOffset, signature.byteLength);
  const timestamp = Number(view.getBigUint64(0));
  if (!Number.isSafeInteger(timestamp)) return undefined;
  const digitallySigned = signature.slice(8);
  if (!bytesEqual(digitallySigned.subarray(0, 2), ECDSA_SHA256)) return undefined;
  const length = view.getUint16(10);
  if (digitallySigned.length !== 4 + length) return undefined;
  const input = treeHeadSignatureInput({
    timestamp,
    treeSize: checkpoint.size,
    rootHash: checkpoint.root,
  });
  try {
    const ok = verify(
      'sha256',
      input,
      { key: publicKey, dsaEncoding: 'der' },
      digitallySigned.subarray(4),
    );
    return ok ? { timestamp, digitallySigned } : undefined;
  } catch {
    return undefined;
  }
}

type KnownKey =
  | { readonly kind: 'ed25519'; readonly cosigner: Ed25519Cosigner }
  | { readonly kind: 'falcon'; readonly cosigner: FalconCosigner }
  | { readonly kind: 'rfc6962'; readonly key: Rfc6962LogKey };

function keyIndex(set: CheckpointVerifierSet): Map<string, KnownKey> {
  requireOrigin(set.origin);
  const index = new Map<string, KnownKey>();
  // One public key under two names would count its weight twice toward the quorum.
  const publicKeys = new Set<string>();
  const add = (name: string, keyId: number, key: KnownKey, publicKey?: Uint8Array): void => {
    requireKeyName(name);
    const id = `${name} ${keyId}`;
    if (index.has(id)) {
      throw new CtError(CtErrorCode.MALFORMED_NOTE, `verifier set names key ${id} twice`);
    }
    if (publicKey !== undefined) {
      const keyHex = `${key.kind} ${toHex(publicKey)}`;
      if (publicKeys.has(keyHex)) {
        throw new CtError(
          CtErrorCode.MALFORMED_NOTE,
          `verifier set lists the ${key.kind} public key of ${name} under another name too`,
        );
      }
      publicKeys.add(keyHex);
    }
    index.set(id, key);
  };
  if (!Array.isArray(set.cosigners)) throw malformed('cosigners must be an array');
  for (const cosigner of set.cosigners) {
    if (
      !(cosigner.publicKey instanceof Uint8Array) ||
      cosigner.publicKey.length !== ED25519_PUBLIC_KEY_BYTES ||
      !Number.isSafeInteger(cosigner.weight) ||
      cosigner.weight < 0
    ) {
      throw malformed(`cosigner ${cosigner.name} needs a 32-byte key and a non-negative weight`);
    }
    add(
      cosigner.name,
      ed25519KeyId(cosigner.name, cosigner.publicKey),
      { kind: 'ed25519', cosigner },
      cosigner.publicKey,
    );
  }
  for (const cosigner of set.falconKeys ?? []) {
    if (set.falcon === undefined) throw malformed('FALCON keys given without a FALCON backend');
    if (
      !(cosigner.publicKey instanceof Uint8Array) ||
      cosigner.publicKey.length !== FALCON1024_PUBLIC_KEY_BYTES
    ) {
      throw malformed(`FALCON key ${cosigner.name} is not a FALCON-1024 public key`);
    }
    add(
      cosigner.name,
      falconKeyId(cosigner.name, cosigner.publicKey),
      { kind: 'falcon', cosigner },
      cosigner.publicKey,
    );
  }
  for (const key of set.rfc6962Keys ?? []) {
    add(key.name, rfc6962KeyId(key.name, key.publicKey), { kind: 'rfc6962', key });
  }
  return index;
}

/**
 * Verifies a signed checkpoint against a verifier set: the body must parse and name the set's
 * origin; every line from a known key must verify (one bad known signature rejects the note,
 * as signed-note recommends); lines from unknown keys are ignored. Succeeds only when the
 * verified Ed25519 cosigners hold more than 2/3 of the total weight and, if the set requires
 * it, a FALCON-1024 signature verified. Throws `CtError` with the reason otherwise.
 */
export function verifyCheckpoint(note: string, set: CheckpointVerifierSet): VerifiedCheckpoint {
  const verified = verifySignatures(note, set);
  if (!hasQuorum(verified.signedWeight, verified.totalWeight)) {
    throw new CtError(
      CtErrorCode.NO_QUORUM,
      `checkpoint signatures carry weight ${verified.signedWeight} of ${verified.totalWeight}; more than 2/3 is needed`,
      { signedWeight: verified.signedWeight, totalWeight: verified.totalWeight },
    );
  }
  if (set.requireFalcon === true && verified.falconSigners.length === 0) {
    throw new CtError(
      CtErrorCode.FALCON_SIGNATURE_MISSING,
      'checkpoint carries no verified FALCON-1024 signature',
    );
  }
  return verified;
}

/** signed · 3 > total · 2, in BigInt so large weights cannot overflow. */
export function hasQuorum(signedWeight: number, totalWeight: number): boolean {
  return totalWeight > 0 && BigInt(signedWeight) * 3n > BigInt(totalWeight) * 2n;
}

/**
 * Checks every signature line of a note from a known key (throwing `INVALID_SIGNATURE` for a
 * bad one) and reports what verified, without the quorum rule. `requireKnown` also refuses
 * lines from unknown keys (`UNKNOWN_SIGNER`): the log only stores signatures it can check.
 */
export function verifySignatures(
  note: string,
  set: CheckpointVerifierSet,
  options: { readonly requireKnown?: boolean } = {},
): VerifiedCheckpoint {
  const index = keyIndex(set);
  const parsed = parseSignedNote(note);
  const checkpoint = parseCheckpointBody(parsed.text);
  if (checkpoint.origin !== set.origin) {
    throw new CtError(
      CtErrorCode.INVALID_ORIGIN,
      `checkpoint origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(set.origin)}`,
    );
  }
  const text = encoder.encode(parsed.text);
  const seen = new Set<string>();
  const cosigners: string[] = [];
  const falconSigners: string[] = [];
  const rfc6962: Rfc6962Signature[] = [];
  let signedWeight = 0n;
  let unknownSignatures = 0;
  for (const line of parsed.signatures) {
    const id = `${line.name} ${line.keyId}`;
    const known = index.get(id);
    if (known === undefined) {
      if (options.requireKnown === true) {
        throw new CtError(CtErrorCode.UNKNOWN_SIGNER, `no key ${id} in the verifier set`, {
          name: line.name,
          keyId: line.keyId,
        });
      }
      unknownSignatures++;
      continue;
    }
    let ok: boolean;
    if (known.kind === 'ed25519') {
      ok = ed25519Verify(line.signature, text, known.cosigner.publicKey);
    } else if (known.kind === 'falcon') {
      ok = (set.falcon as FalconBackend).verify(line.signature, text, known.cosigner.publicKey);
    } else {
      const opened = openRfc6962Signature(checkpoint, line.signature, known.key.publicKey);
      ok = opened !== undefined;
      if (opened !== undefined && !seen.has(id)) rfc6962.push({ name: line.name, ...opened });
    }
    if (!ok) {
      throw new CtError(CtErrorCode.INVALID_SIGNATURE, `signature by ${id} does not verify`, {
        name: line.name,
        keyId: line.keyId,
      });
    }
    if (seen.has(id)) continue;
    seen.add(id);
    if (known.kind === 'ed25519') {
      cosigners.push(known.cosigner.name);
      signedWeight += BigInt(known.cosigner.weight);
    } else if (known.kind === 'falcon') {
      falconSigners.push(known.cosigner.name);
    }
  }
  const totalWeight = set.cosigners.reduce((sum, c) => sum + BigInt(c.weight), 0n);
  return {
    checkpoint,
    signedWeight: Number(signedWeight),
    totalWeight: Number(totalWeight),
    cosigners,
    falconSigners,
    rfc6962,
    unknownSignatures,
  };
}

/**
 * Adds signature lines to a signed note (or to a bare checkpoint body), keeping the first line
 * per (key name, key ID) — a second FALCON signature by one key differs but adds nothing.
 */
export function addCosignatures(noteOrBody: string, signatures: readonly NoteSignature[]): string {
  let text: string;
  let existing: readonly NoteSignature[];
  if (noteOrBody.includes('\n\n')) {
    ({ text, signatures: existing } = parseSignedNote(noteOrBody));
  } else {
    parseCheckpointBody(noteOrBody);
    text = noteOrBody;
    existing = [];
  }
  const seen = new Set(existing.map((s) => `${s.name} ${s.keyId}`));
  const merged = [...existing];
  for (const signature of signatures) {
    const id = `${signature.name} ${signature.keyId}`;
    if (seen.has(id)) continue;
    seen.add(id);
    merged.push(signature);
  }
  return formatSignedNote(text, merged);
}
