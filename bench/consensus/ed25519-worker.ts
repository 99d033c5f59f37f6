/**
 * Worker thread of the Ed25519 baseline (ed25519-baseline.ts): prepares signatures and
 * KeyObjects, says it is ready, and on "start" verifies for a fixed time and posts the count.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

interface Job {
  readonly seconds: number;
  readonly messageBytes: number;
}

const job = workerData as Job;
const KEYS = 64;
const samples = Array.from({ length: KEYS * 4 }, () => {
  const pair = generateKeyPairSync('ed25519');
  const message = randomBytes(job.messageBytes);
  const signature = sign(null, message, pair.privateKey);
  // Export and re-import: the verifier holds a KeyObject made from the encoded key once.
  const der = pair.publicKey.export({ format: 'der', type: 'spki' });
  return { key: createPublicKey({ key: der, format: 'der', type: 'spki' }), message, signature };
});

function measure(): { count: number; seconds: number; failures: number } {
  let count = 0;
  let failures = 0;
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(job.seconds * 1e9));
  for (;;) {
    for (const sample of samples) {
      if (!verify(null, sample.message, sample.key, sample.signature)) failures += 1;
    }
    count += samples.length;
    if (process.hrtime.bigint() >= limit) break;
  }
  return { count, seconds: Number(process.hrtime.bigint() - start) / 1e9, failures };
}

parentPort?.once('message', () => parentPort?.postMessage(measure()));
parentPort?.postMessage('ready');
