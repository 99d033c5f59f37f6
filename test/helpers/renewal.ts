import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { parseCertificate, pemToDerList, type ParsedCertificate } from '../../src/crypto/x509.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig, type ValidatorNodeConfig } from '../../src/node/node-config.js';
import { loadClusterTarget, openOperatorParts } from '../../src/node/operator.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import { lacksIssuanceExtensions } from '../../src/trustchain/ca-module/index.js';
import { runCli } from './cli.js';
import { withDeadline } from './wait.js';

/**
 * What the certificate-renewal tests share (test/node/*renewal*.test.ts): a node's configuration
 * with `identity.renewAt: 0`, an in-process node whose log lines are kept and can be waited on,
 * the checks of a renewed chain file, and the leaf a fresh STOQ or TLS connection is served.
 */

/** `DIR/<name>/config.json` with `identity.renewAt: 0`: the certificate is due at once. */
export async function renewingConfig(
  clusterDir: string,
  name: string,
): Promise<ValidatorNodeConfig> {
  const loaded = await loadValidatorNodeConfig(path.join(clusterDir, name, 'config.json'), {});
  return { ...loaded, identity: { ...loaded.identity, renewAt: 0 } };
}

export type LogFields = Record<string, unknown>;

/** A validator started in-process (and pushed to `running`), its log lines kept. */
export interface WatchedNode {
  readonly node: ValidatorNode;
  readonly lines: readonly string[];
  /**
   * The fields of the first line (already logged or still to come) whose `msg` is `message` and
   * that `match` accepts.
   */
  logged(message: string, match?: (fields: LogFields) => boolean): Promise<LogFields>;
  /** `promise` within `ms`, failing with what it waited for and the node's log. */
  within<T>(promise: Promise<T>, ms: number, what: string): Promise<T>;
  /** Fails when a logged line contains any of `texts`; the message is the node's log. */
  assertNotLogged(...texts: string[]): void;
}

export async function startWatchedNode(
  config: ValidatorNodeConfig,
  running: ValidatorNode[],
): Promise<WatchedNode> {
  const lines: string[] = [];
  const seen: LogFields[] = [];
  const waiters: {
    message: string;
    match: (f: LogFields) => boolean;
    done: (f: LogFields) => void;
  }[] = [];
  const logger = createLogger(
    { node: config.name },
    (line) => {
      lines.push(line);
      const fields = JSON.parse(line) as LogFields;
      seen.push(fields);
      for (const waiter of [...waiters]) {
        if (fields.msg !== waiter.message || !waiter.match(fields)) continue;
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.done(fields);
      }
    },
    'info',
  );
  const node = await startValidatorNode(config, logger);
  running.push(node);
  return {
    node,
    lines,
    logged(message, match = () => true) {
      const earlier = seen.find((fields) => fields.msg === message && match(fields));
      if (earlier !== undefined) return Promise.resolve(earlier);
      return new Promise((done) => waiters.push({ message, match, done }));
    },
    within(promise, ms, what) {
      return withDeadline(promise, ms, what).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${lines.join('')}`);
      });
    },
    assertNotLogged(...texts) {
      assert.ok(!lines.some((line) => texts.some((text) => line.includes(text))), lines.join(''));
    },
  };
}

/** The leaf of the PEM chain in `file`. */
export async function leafOf(file: string): Promise<ParsedCertificate> {
  return parseCertificate(pemToDerList(await readFile(file, 'utf8'))[0]!);
}

/**
 * `file` holds a renewal of `original`: the leaf `newSerial`, issued through consensus, for the
 * same key and names, then its intermediate; its mode is `mode`; `cert verify --cluster` passes.
 * Returns the new leaf.
 */
export async function assertRenewedChain(
  file: string,
  original: ParsedCertificate,
  expected: { readonly newSerial: unknown; readonly mode: number; readonly clusterDir: string },
): Promise<ParsedCertificate> {
  const chain = pemToDerList(await readFile(file, 'utf8'));
  assert.equal(chain.length, 2);
  const leaf = parseCertificate(chain[0]!);
  assert.equal(leaf.serialNumber, expected.newSerial);
  assert.notEqual(leaf.serialNumber, original.serialNumber);
  assert.equal(lacksIssuanceExtensions(leaf.der), false, 'issued through consensus');
  assert.ok(leaf.publicKey.equals(original.publicKey));
  assert.deepEqual(leaf.uris, original.uris);
  assert.deepEqual(leaf.ipAddresses, original.ipAddresses);
  assert.deepEqual(leaf.dnsNames, original.dnsNames);
  assert.equal((await stat(file)).mode & 0o777, expected.mode);
  const verified = await runCli(['cert', 'verify', file, '--cluster', expected.clusterDir]);
  assert.equal(verified.code, 0, verified.out + verified.err);
  return leaf;
}

/** The certificate fingerprint a fresh operator STOQ connection to `address` is shown. */
export async function stoqLeafFingerprint(
  clusterDir: string,
  address: ValidatorNode['stoq'],
): Promise<string> {
  const operator = await openOperatorParts(await loadClusterTarget(clusterDir));
  try {
    const session = await operator.parts.endpoint.connect(address);
    session.connection.close('done');
    return session.peer.certificateFingerprint;
  } finally {
    await operator.close();
  }
}

/**
 * The serial of the leaf a fresh TLS connection to `url` is served, its chain checked against
 * `ca`; `checkName: false` skips the host name check (node certificates name the node by URI).
 */
export function httpsLeafSerial(url: string, ca: string, checkName = true): Promise<string> {
  const parsed = new URL(url);
  return withDeadline(
    new Promise<string>((resolve, reject) => {
      const socket = tls.connect({
        host: parsed.hostname,
        port: Number(parsed.port),
        ca,
        ...(checkName ? {} : { checkServerIdentity: () => undefined }),
      });
      socket.once('error', reject);
      socket.once('secureConnect', () => {
        const raw = socket.getPeerCertificate().raw;
        socket.end();
        resolve(parseCertificate(raw).serialNumber);
      });
    }),
    15_000,
    'a TLS handshake',
  );
}
