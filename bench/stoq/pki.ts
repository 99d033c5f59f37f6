/**
 * The benchmark's PKI, made fresh at bench time in a temporary directory with the development
 * CA (`src/node/dev-ca.ts`): a root, a server identity (validator) and a client identity (node),
 * written as key files and PEM chains so that child processes load them the way a node does.
 */
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readKeyFile } from '../../src/crypto/keyfile.js';
import { defaultFalcon, type FalconBackend, type FalconKeyPair } from '../../src/crypto/falcon.js';
import { pemToDerList } from '../../src/crypto/x509.js';
import { devCaPaths, initDevCa, issueDevIdentity, loadDevCa } from '../../src/node/dev-ca.js';

export const BENCH_CLUSTER = 'stoq-bench';
export const SERVER_NAME = 'bench-server';
export const CLIENT_NAME = 'bench-client';

/** Creates the CA and both identities in `dir` (which must not hold a CA yet). */
export async function createBenchPki(dir: string): Promise<void> {
  await initDevCa({ dir, cluster: BENCH_CLUSTER, validityDays: 2 });
  const { ca, cluster } = await loadDevCa(dir);
  const falcon = defaultFalcon();
  const identities = [
    { name: SERVER_NAME, role: 'validator' as const },
    { name: CLIENT_NAME, role: 'node' as const },
  ];
  for (const { name, role } of identities) {
    await issueDevIdentity({ ca, cluster, name, role, outDir: dir, validityDays: 2, falcon });
  }
}

/** One identity as the transports, the authenticator and plain `node:tls` need it. */
export interface BenchIdentity {
  readonly name: string;
  readonly ed25519PrivateKey: KeyObject;
  readonly falcon: FalconKeyPair;
  readonly falconBackend: FalconBackend;
  /** DER chain, leaf first. */
  readonly chain: readonly Uint8Array[];
  readonly chainPem: string;
  /** DER trust roots. */
  readonly roots: readonly Uint8Array[];
  readonly rootPem: string;
}

export async function loadBenchIdentity(dir: string, name: string): Promise<BenchIdentity> {
  const identity = await readKeyFile(path.join(dir, `${name}.key`), { kind: 'node-identity' });
  const chainPem = await readFile(path.join(dir, `${name}.pem`), 'utf8');
  const rootPem = await readFile(devCaPaths(dir).certificate, 'utf8');
  return {
    name,
    ed25519PrivateKey: identity.keys.ed25519.privateKey,
    falcon: identity.keys.falcon,
    falconBackend: defaultFalcon(),
    chain: pemToDerList(chainPem),
    chainPem,
    roots: pemToDerList(rootPem),
    rootPem,
  };
}
