import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../../src/crypto/ed25519.js';
import type { FalconBackend, FalconKeyPair } from '../../../src/crypto/falcon.js';
import { openDatabase } from '../../../src/storage/database.js';
import {
  addCosignatures,
  encodeCertificateChain,
  encodeMerkleTreeLeaf,
  signCheckpointEd25519,
  signCheckpointFalcon,
  signTreeHeadRfc6962,
  type CheckpointVerifierSet,
  type CtEntryInput,
  type NoteSignature,
  type TreeHead,
} from '../../../src/trustchain/ct/index.js';

export const ORIGIN = 'hypermesh.test/ct/log';

export interface Validator {
  readonly name: string;
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
  readonly weight: number;
}

/** Validators with fresh Ed25519 keys and the given weights. */
export function makeValidators(weights: readonly number[]): Validator[] {
  return weights.map((weight, i) => {
    const { privateKey } = generateEd25519KeyPair();
    return {
      name: `${ORIGIN}/validator-${i}`,
      privateKey,
      publicKey: ed25519RawPublicKey(privateKey),
      weight,
    };
  });
}

export interface LogKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export function makeLogKey(): LogKey {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export function verifierSet(
  validators: readonly Validator[],
  extra: Partial<CheckpointVerifierSet> = {},
): CheckpointVerifierSet {
  return {
    origin: ORIGIN,
    cosigners: validators.map(({ name, publicKey, weight }) => ({ name, publicKey, weight })),
    ...extra,
  };
}

/** Signs a checkpoint body with the given validators (and optionally the RFC 6962 log key). */
export function cosign(
  body: string,
  validators: readonly Validator[],
  options: { head?: TreeHead; logKey?: LogKey } = {},
): string {
  const signatures: NoteSignature[] = validators.map((v) =>
    signCheckpointEd25519(body, v.name, v.privateKey),
  );
  if (options.head !== undefined && options.logKey !== undefined) {
    signatures.push(signTreeHeadRfc6962(options.head, ORIGIN, options.logKey.privateKey));
  }
  return addCosignatures(body, signatures);
}

export async function falconLine(
  body: string,
  name: string,
  keys: FalconKeyPair,
  falcon: FalconBackend,
): Promise<NoteSignature> {
  return signCheckpointFalcon(body, name, keys, falcon);
}

/** A certificate-shaped x509 entry: deterministic bytes, unique per (batch, i). */
export function x509Entry(batch: number, i: number, timestamp: number): CtEntryInput {
  const certificate = new Uint8Array(40 + ((batch * 7 + i) % 50)).map(
    (_, k) => (batch * 31 + i * 17 + k) & 0xff,
  );
  new DataView(certificate.buffer).setUint32(0, i);
  new DataView(certificate.buffer).setUint16(4, batch);
  return {
    leaf: encodeMerkleTreeLeaf({ timestamp, entry: { type: 'x509', certificate } }),
    extraData: encodeCertificateChain([Uint8Array.of(0x30, batch & 0xff, i & 0xff)]),
  };
}

/** A fresh node store file in a temporary directory, as the node opens it. */
export function tempDatabase(): { db: Database; path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'hypermesh-ct-'));
  const path = join(dir, 'node.sqlite');
  const db = openDatabase(path);
  return {
    db,
    path,
    cleanup: () => {
      if (db.open) db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
