import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CliError } from '../../src/node/cli-error.js';
import { DEFAULT_METRICS_PORT, DEFAULT_STOQ_PORT } from '../../src/node/config.js';
import {
  DEFAULT_IDLE_BLOCK_INTERVAL_MS,
  loadValidatorNodeConfig,
  parseValidatorNodeConfig,
} from '../../src/node/node-config.js';

const minimal = {
  name: 'node-1',
  dataDir: 'data',
  genesisFile: '../genesis.json',
  identity: { keyFile: 'node-1.key', certificateFile: 'node-1.pem' },
  trust: { rootsFile: '../ca/root.pem' },
  storagePlotFile: 'storage.plot',
};

const parse = (input: unknown, env: NodeJS.ProcessEnv = {}) =>
  parseValidatorNodeConfig(input, { baseDir: '/c/node-1', source: '/c/node-1/config.json', env });

function rejectsWith(input: unknown, ...patterns: RegExp[]): void {
  assert.throws(
    () => parse(input),
    (error: unknown) => {
      assert.ok(error instanceof CliError, String(error));
      assert.equal(error.exitCode, 2);
      assert.match(error.message, /invalid node configuration \/c\/node-1\/config\.json/);
      for (const pattern of patterns) assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('node start configuration', () => {
  it('fills the documented defaults and resolves paths against the file', () => {
    const config = parse(minimal);
    assert.deepEqual(config.stoq, {
      host: '127.0.0.1',
      port: DEFAULT_STOQ_PORT,
      transport: 'quic',
      authMode: 'delegated',
    });
    assert.deepEqual(config.metrics, { host: '127.0.0.1', port: DEFAULT_METRICS_PORT });
    assert.deepEqual(config.peers, []);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.dataDir, '/c/node-1/data');
    assert.equal(config.genesisFile, '/c/genesis.json');
    assert.equal(config.identity.keyFile, '/c/node-1/node-1.key');
    assert.equal(config.trust.rootsFile, '/c/ca/root.pem');
    assert.equal(config.storagePlotFile, '/c/node-1/storage.plot');
    assert.deepEqual(config.consensus, { idleBlockIntervalMs: DEFAULT_IDLE_BLOCK_INTERVAL_MS });
  });

  it('names the offending field for every kind of mistake', () => {
    rejectsWith({ ...minimal, stoq: { port: 70000 } }, /stoq\.port: /);
    rejectsWith({ ...minimal, stoq: { port: '9292' } }, /stoq\.port: .*number/);
    rejectsWith({ ...minimal, name: 'Node One' }, /name: lowercase letters/);
    rejectsWith({ ...minimal, logLevel: 'loud' }, /logLevel: /);
    rejectsWith({ ...minimal, consensus: { idleBlockIntervalMs: 60_001 } }, /consensus\.idle/);
    rejectsWith({ ...minimal, consensus: { idleBlockIntervalMs: 1.5 } }, /consensus\.idle/);
    rejectsWith({ ...minimal, consensus: { pace: 1 } }, /consensus: .*pace/);
    rejectsWith({ ...minimal, surprise: true }, /\(root\): .*surprise/);
    rejectsWith({ ...minimal, identity: { keyFile: 'k' } }, /identity\.certificateFile: /);
    rejectsWith(
      { ...minimal, peers: [{ name: 'node-2', address: { host: 'h', port: 0 } }] },
      /peers\[0\]\.address\.port: /,
    );
    rejectsWith(
      {
        ...minimal,
        peers: [
          { name: 'node-2', address: { host: 'h', port: 1 } },
          { name: 'node-2', address: { host: 'h', port: 2 } },
        ],
      },
      /peers\[1\]\.name: peer "node-2" is listed twice/,
    );
    const { dataDir: _dataDir, ...noDataDir } = minimal;
    rejectsWith(noDataDir, /dataDir: /);
  });

  it('checks ca.maxBlockAgeSeconds (optional; 120 to 1800 whole seconds)', () => {
    const ca = { intermediateKeyFile: 'i.key', trustBundleFile: 'b.json' };
    assert.equal(parse({ ...minimal, ca }).ca?.maxBlockAgeSeconds, undefined);
    assert.equal(
      parse({ ...minimal, ca: { ...ca, maxBlockAgeSeconds: 600 } }).ca?.maxBlockAgeSeconds,
      600,
    );
    rejectsWith({ ...minimal, ca: { ...ca, maxBlockAgeSeconds: 60 } }, /ca\.maxBlockAgeSeconds/);
    rejectsWith({ ...minimal, ca: { ...ca, maxBlockAgeSeconds: 3600 } }, /ca\.maxBlockAgeSeconds/);
    rejectsWith({ ...minimal, ca: { ...ca, maxBlockAgeSeconds: 300.5 } }, /ca\.maxBlockAgeSeconds/);
  });

  it('applies HYPERMESH_* environment overrides and rejects bad values by name', () => {
    const config = parse(minimal, {
      HYPERMESH_STOQ_HOST: '::1',
      HYPERMESH_STOQ_PORT: '7000',
      HYPERMESH_METRICS_HOST: '0.0.0.0',
      HYPERMESH_METRICS_PORT: '7001',
      HYPERMESH_DATA_DIR: '/var/lib/hm',
      HYPERMESH_LOG_LEVEL: 'debug',
      HYPERMESH_IDLE_BLOCK_INTERVAL_MS: '0',
    });
    assert.equal(config.consensus.idleBlockIntervalMs, 0);
    assert.equal(config.stoq.host, '::1');
    assert.equal(config.stoq.port, 7000);
    assert.deepEqual(config.metrics, { host: '0.0.0.0', port: 7001 });
    assert.equal(config.dataDir, '/var/lib/hm');
    assert.equal(config.logLevel, 'debug');
    assert.equal(parse(minimal, { HYPERMESH_METRICS_PORT: 'off' }).metrics, null);
    assert.throws(
      () => parse(minimal, { HYPERMESH_STOQ_PORT: '99999' }),
      /HYPERMESH_STOQ_PORT="99999" is not a port/,
    );
    assert.throws(
      () => parse(minimal, { HYPERMESH_LOG_LEVEL: 'chatty' }),
      /HYPERMESH_LOG_LEVEL="chatty" is not one of debug, info, warn, error/,
    );
    for (const bad of ['-1', '2.5', '60001', 'soon']) {
      assert.throws(
        () => parse(minimal, { HYPERMESH_IDLE_BLOCK_INTERVAL_MS: bad }),
        new RegExp(`HYPERMESH_IDLE_BLOCK_INTERVAL_MS="${bad}" is not a whole number of ms`),
      );
    }
  });

  it('checks the host and data directory overrides like the fields they replace', () => {
    const long = 'h'.repeat(300);
    rejectsWith({ ...minimal, stoq: { host: long } }, /stoq\.host: Too big/);
    for (const variable of ['HYPERMESH_STOQ_HOST', 'HYPERMESH_METRICS_HOST'] as const) {
      assert.throws(
        () => parse(minimal, { [variable]: long }),
        (error: unknown) => {
          assert.ok(error instanceof CliError, String(error));
          assert.equal(error.exitCode, 2);
          assert.match(
            error.message,
            new RegExp(
              `${variable}="h{64}… \\(300 characters\\)" is not a valid (stoq|metrics)\\.host: Too big`,
            ),
          );
          return true;
        },
      );
    }
    assert.equal(
      parse(minimal, { HYPERMESH_METRICS_HOST: 'h'.repeat(253) }).metrics?.host.length,
      253,
    );
    // Relative to the working directory, like --config; the file's own paths to the file.
    const config = parse(minimal, { HYPERMESH_DATA_DIR: 'data-b' });
    assert.equal(config.dataDir, path.resolve('data-b'));
    assert.equal(config.genesisFile, '/c/genesis.json');
    assert.equal(parse(minimal).dataDir, '/c/node-1/data');
  });

  it('reports a missing file and malformed JSON with the file name', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-node-config-'));
    try {
      const missing = path.join(dir, 'missing.json');
      await assert.rejects(
        loadValidatorNodeConfig(missing, {}),
        new RegExp(`cannot read node configuration ${missing}`),
      );
      const bad = path.join(dir, 'bad.json');
      await writeFile(bad, '{ "name": ');
      await assert.rejects(loadValidatorNodeConfig(bad, {}), /bad\.json is not valid JSON/);
      const good = path.join(dir, 'config.json');
      await writeFile(good, JSON.stringify(minimal));
      const config = await loadValidatorNodeConfig(good, {});
      assert.equal(config.dataDir, path.join(dir, 'data'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
