/**
 * Worker thread of the Ed25519 baseline (ed25519-baseline.ts): prepares signatures and raw
 * public keys, says it is ready, and on "start" verifies for a fixed time with the function the
 * nodes use (`ed25519Verify`: libsodium, raw key) and posts the count.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { ed25519RawPublicKey, ed25519Verify } from '../../src/crypto/ed25519.js';

interface Job {
  readonly seconds: number;
  readonly messageBytes: number;
}

const job = workerData as Job;
const KEYS = 64;
const samples = Array.from({ length: KEYS * 4 }, () => {
  const pair = generateKeyPairSync('ed25519');
  const message = randomBytes(job.messageBytes);
  const signature = new Uint8Array(sign(null, message, pair.privateKey));
  // A transaction carries its sender's raw 32-byte key; the nodes verify with those bytes.
  return { key: ed25519RawPublicKey(pair.publicKey), message, signature };
});

function measure(): { count: number; seconds: number; failures: number } {
  let count = 0;
  let failures = 0;
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(job.seconds * 1e9));
  for (;;) {
    for (const sample of samples) {
      if (!ed25519Verify(sample.signature, sample.message, sample.key)) failures += 1;
    }
    count += samples.length;
    if (process.hrtime.bigint() >= limit) break;
  }
  return { count, seconds: Number(process.hrtime.bigint() - start) / 1e9, failures };
}

parentPort?.once('message', () => parentPort?.postMessage(measure()));
parentPort?.postMessage('ready');
