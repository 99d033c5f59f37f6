/**
 * `npm run bench -- crypto`: the crypto core beside same-run baselines.
 * - FALCON-1024 sign/verify per backend; baseline: the cross-check backend (@noble/post-quantum).
 * - Ed25519 sign (node:crypto) and verify (libsodium); baseline: @noble/curves (pure JS), and
 *   for verify also node:crypto with the key imported once (OpenSSL, the verifier before).
 * - Hybrid (Ed25519 + FALCON-1024) sign/verify; baseline: Ed25519 alone (the cost of PQ).
 * - Merkle tree appends/s and inclusion proofs/s; baseline: hashing the same leaves (SHA-256).
 * - Deterministic CBOR encode; baseline: JSON.stringify of the same value.
 */
import { randomBytes, verify as verifySignature } from 'node:crypto';
import { ed25519 as nobleEd25519 } from '@noble/curves/ed25519.js';
import { encodeCanonical } from '../../src/codec/cbor.js';
import {
  ed25519PublicKeyFromRaw,
  ed25519RawPublicKey,
  ed25519Sign,
  ed25519Verify,
  generateEd25519KeyPair,
} from '../../src/crypto/ed25519.js';
import { createFalcon, type FalconBackend } from '../../src/crypto/falcon.js';
import { generateHybridKeyPair, signHybrid, verifyHybrid } from '../../src/crypto/hybrid.js';
import { sha256 } from '../../src/crypto/hash.js';
import { MerkleTree, leafHash, verifyInclusion } from '../../src/crypto/merkle.js';
import { opsPerSecond, type BenchContext } from '../report.js';

async function falconRates(backend: FalconBackend, seconds: number) {
  const keys = await backend.generateKeyPair();
  const message = randomBytes(64);
  const signature = await backend.sign(message, keys.secretKey);
  const sign = await opsPerSecond(() => backend.sign(message, keys.secretKey), seconds, 2000);
  const verify = await opsPerSecond(
    () => backend.verify(signature, message, keys.publicKey),
    seconds,
  );
  // Signing in parallel shows what the library does with the thread pool (2 cores here).
  const parallel = await opsPerSecond(
    () => Promise.all(Array.from({ length: 8 }, () => backend.sign(message, keys.secretKey))),
    seconds,
    500,
  );
  return { sign, verify, parallelSign: parallel * 8 };
}

export default async function crypto(context: BenchContext): Promise<void> {
  const seconds = context.quick ? 0.5 : 2;

  context.progress('FALCON-1024');
  const fast = createFalcon('pqclean');
  const reference = createFalcon('noble');
  const a = await falconRates(fast, seconds);
  const b = await falconRates(reference, seconds);
  const note = `${fast.name} vs ${reference.name}`;
  context.emit({
    metric: 'falcon1024_sign_per_s',
    value: a.sign,
    unit: 'ops/s',
    baseline: { name: reference.name, value: b.sign },
    note,
  });
  context.emit({
    metric: 'falcon1024_sign_8_parallel_per_s',
    value: a.parallelSign,
    unit: 'ops/s',
    baseline: { name: reference.name, value: b.parallelSign },
    note,
  });
  context.emit({
    metric: 'falcon1024_verify_per_s',
    value: a.verify,
    unit: 'ops/s',
    baseline: { name: reference.name, value: b.verify },
    note,
  });

  context.progress('Ed25519');
  const ed = generateEd25519KeyPair();
  const raw = ed25519RawPublicKey(ed.publicKey);
  const message = randomBytes(100);
  const edSig = ed25519Sign(message, ed.privateKey);
  const nobleSecret = nobleEd25519.utils.randomSecretKey();
  const noblePublic = nobleEd25519.getPublicKey(nobleSecret);
  const nobleSig = nobleEd25519.sign(message, nobleSecret);
  const edSign = await opsPerSecond(() => ed25519Sign(message, ed.privateKey), seconds);
  const nobleSign = await opsPerSecond(() => nobleEd25519.sign(message, nobleSecret), seconds);
  const edVerify = await opsPerSecond(() => ed25519Verify(edSig, message, raw), seconds);
  const opensslKey = ed25519PublicKeyFromRaw(raw);
  const opensslVerify = await opsPerSecond(
    () => verifySignature(null, message, opensslKey, edSig),
    seconds,
  );
  const nobleVerify = await opsPerSecond(
    () => nobleEd25519.verify(nobleSig, message, noblePublic),
    seconds,
  );
  context.emit({
    metric: 'ed25519_sign_per_s',
    value: edSign,
    unit: 'ops/s',
    baseline: { name: '@noble/curves', value: nobleSign },
  });
  context.emit({
    metric: 'ed25519_verify_per_s',
    value: edVerify,
    unit: 'ops/s',
    baseline: { name: '@noble/curves', value: nobleVerify },
  });
  context.emit({
    metric: 'ed25519_verify_per_s_vs_openssl',
    value: edVerify,
    unit: 'ops/s',
    baseline: { name: 'node:crypto (OpenSSL), key imported once', value: opensslVerify },
  });

  context.progress('hybrid Ed25519 + FALCON-1024');
  const hybrid = await generateHybridKeyPair('ed25519', fast);
  const options = { context: 'bench', falcon: fast };
  const hybridSig = await signHybrid(message, hybrid.signingKey, options);
  const hybridSign = await opsPerSecond(
    () => signHybrid(message, hybrid.signingKey, options),
    seconds,
    2000,
  );
  const hybridVerify = await opsPerSecond(
    () => verifyHybrid(hybridSig, message, hybrid.publicKey, options),
    seconds,
  );
  context.emit({
    metric: 'hybrid_sign_per_s',
    value: hybridSign,
    unit: 'ops/s',
    baseline: { name: 'ed25519 alone', value: edSign },
  });
  context.emit({
    metric: 'hybrid_verify_per_s',
    value: hybridVerify,
    unit: 'ops/s',
    baseline: { name: 'ed25519 alone', value: edVerify },
  });

  context.progress('Merkle tree');
  const leaves = context.quick ? 50_000 : 500_000;
  const data = Array.from({ length: 1024 }, (_, i) => randomBytes(64 + (i % 64)));
  let start = performance.now();
  for (let i = 0; i < leaves; i++) sha256(data[i % 1024] as Uint8Array);
  const hashRate = leaves / ((performance.now() - start) / 1000);
  const tree = new MerkleTree();
  start = performance.now();
  for (let i = 0; i < leaves; i++) tree.appendLeaf(data[i % 1024] as Uint8Array);
  const appendRate = leaves / ((performance.now() - start) / 1000);
  context.emit({
    metric: 'merkle_append_per_s',
    value: appendRate,
    unit: 'leaves/s',
    baseline: { name: 'sha256 of the leaf only', value: hashRate },
    note: `${leaves} leaves`,
  });
  const root = tree.root();
  let index = 0;
  const proofs = await opsPerSecond(() => {
    index = (index + 7919) % leaves;
    const proof = tree.inclusionProof(index);
    if (!verifyInclusion(leafHash(data[index % 1024] as Uint8Array), index, leaves, proof, root))
      throw new Error('inclusion proof failed in benchmark');
  }, seconds);
  context.emit({
    metric: 'merkle_inclusion_prove_and_verify_per_s',
    value: proofs,
    unit: 'ops/s',
    baseline: { name: 'sha256 of a leaf', value: hashRate },
    note: `tree of ${leaves}`,
  });

  context.progress('deterministic CBOR');
  const value = {
    chain: 'hypermesh',
    height: 123456,
    proposer: randomBytes(32),
    txs: Array.from({ length: 10 }, () => randomBytes(100)),
    time: 1_700_000_000_000,
  };
  const jsonValue = {
    ...value,
    proposer: 'x'.repeat(64),
    txs: value.txs.map(() => 'y'.repeat(200)),
  };
  const cbor = await opsPerSecond(() => encodeCanonical(value), seconds);
  const json = await opsPerSecond(() => JSON.stringify(jsonValue), seconds);
  context.emit({
    metric: 'cbor_canonical_encode_per_s',
    value: cbor,
    unit: 'ops/s',
    baseline: { name: 'JSON.stringify (hex strings)', value: json },
  });
}
