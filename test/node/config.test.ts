import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CliError } from '../../src/node/cli-error.js';
import {
  DEFAULT_METRICS_PORT,
  DEFAULT_STOQ_PORT,
  loadNodeConfig,
  parseNodeConfig,
} from '../../src/node/config.js';

const minimal = {
  cluster: 'c1',
  name: 'n1',
  identity: { keyFile: 'keys/n1.key', certificateFile: 'keys/n1.pem' },
  trust: { rootsFile: 'ca/root.pem' },
};

describe('node configuration', () => {
  it('fills documented defaults and resolves paths against the file', () => {
    const config = parseNodeConfig(minimal, '/etc/hypermesh');
    assert.equal(config.transport, 'quic');
    assert.equal(config.auth.mode, 'delegated');
    assert.equal(config.listen.port, DEFAULT_STOQ_PORT);
    assert.equal(config.metrics?.port, DEFAULT_METRICS_PORT);
    assert.equal(config.identity.keyFile, '/etc/hypermesh/keys/n1.key');
    assert.equal(config.trust.rootsFile, '/etc/hypermesh/ca/root.pem');
    assert.deepEqual(config.peers, {});
  });

  it('applies environment overrides', () => {
    const config = parseNodeConfig(minimal, '/x', {
      HYPERMESH_LISTEN_HOST: '::1',
      HYPERMESH_LISTEN_PORT: '7000',
      HYPERMESH_METRICS_PORT: '7001',
    });
    assert.deepEqual(config.listen, { host: '::1', port: 7000 });
    assert.equal(config.metrics?.port, 7001);
    assert.throws(
      () => parseNodeConfig(minimal, '/x', { HYPERMESH_LISTEN_PORT: '70000' }),
      (error: unknown) => error instanceof CliError && /invalid port "70000"/.test(error.message),
    );
  });

  it('names every invalid field precisely and refuses unknown ones', () => {
    assert.throws(
      () =>
        parseNodeConfig(
          { ...minimal, transport: 'carrier-pigeon', listen: { host: 'h', port: -1 }, extra: 1 },
          '/x',
        ),
      (error: unknown) =>
        error instanceof CliError &&
        /transport:/.test(error.message) &&
        /listen\.port:/.test(error.message) &&
        /extra/.test(error.message),
    );
    assert.throws(() => parseNodeConfig({ ...minimal, cluster: 'Not Valid' }, '/x'), /cluster:/);
  });

  it('reports unreadable and non-JSON files', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-config-'));
    try {
      await assert.rejects(
        loadNodeConfig(path.join(dir, 'missing.json')),
        /cannot read configuration/,
      );
      const bad = path.join(dir, 'bad.json');
      await writeFile(bad, '{ "cluster": ');
      await assert.rejects(loadNodeConfig(bad), /is not valid JSON/);
      const good = path.join(dir, 'good.json');
      await writeFile(good, JSON.stringify(minimal));
      const config = await loadNodeConfig(good, {});
      assert.equal(config.identity.certificateFile, path.join(dir, 'keys/n1.pem'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
