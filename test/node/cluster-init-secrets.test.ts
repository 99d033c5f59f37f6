import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it, mock } from 'node:test';
import { initCluster } from '../../src/node/cluster-init.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';

/**
 * How `cluster init` treats the secrets only it holds (docs/node.md, "cluster init"): an option
 * that would encrypt a key is never ignored, and the TrustChain CA's root keys, the generated
 * passphrase and the genesis are on disk (fsynced, and their directory entries too) once it
 * returns.
 */

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'hypermesh-cluster-init-secrets-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});
afterEach(() => {
  mock.restoreAll();
});

describe('cluster init: --ca-passphrase-env', () => {
  it('is refused with --no-ca (exit 2, nothing written), set or not', async () => {
    const out = path.join(root, 'no-ca-passphrase');
    const envs: Record<string, string>[] = [
      {},
      { HM_TEST_ROOT_PASSPHRASE: 'a passphrase long enough to be used' },
    ];
    for (const env of envs) {
      const result = await runCli(
        [...clusterInitArgs(out, 1), '--no-ca', '--ca-passphrase-env', 'HM_TEST_ROOT_PASSPHRASE'],
        env,
      );
      assert.equal(result.code, 2, result.err);
      assert.match(result.err, /--ca-passphrase-env .*cannot be combined with --no-ca/);
      await assert.rejects(fs.stat(out), { code: 'ENOENT' });
      assert.deepEqual(
        (await fs.readdir(root)).filter((entry) => entry.startsWith('no-ca-passphrase')),
        [],
      );
    }
  });
});

describe('cluster init: root keys, passphrase and genesis are fsynced', () => {
  it('fsyncs each file and its directory, and the parent once the cluster is in place', async () => {
    const out = path.join(root, 'durable');
    const synced: { file: string; outExists: boolean }[] = [];
    const realOpen = fs.open.bind(fs);
    mock.method(fs, 'open', async (...args: Parameters<typeof fs.open>) => {
      const handle = await realOpen(...args);
      const file = String(args[0]);
      const realSync = handle.sync.bind(handle);
      mock.method(handle, 'sync', async () => {
        await realSync();
        synced.push({ file, outExists: existsSync(out) });
      });
      return handle;
    });
    await initCluster({
      out,
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
      dns: false,
      discovery: false,
      acme: false,
    });
    mock.restoreAll();

    const staging = `${escape(out)}\\.tmp-[0-9]+-[A-Za-z0-9]{6}`;
    const wasSynced = (pattern: string): boolean =>
      synced.some(({ file }) => new RegExp(`^${pattern}$`).test(file));
    /** The temporary file `relative` was written to in the staging directory, then renamed. */
    const syncedInStaging = (relative: string): boolean => {
      const directory = path.dirname(relative);
      const where = directory === '.' ? '' : `/${escape(directory)}`;
      return wasSynced(
        `${staging}${where}/\\.${escape(path.basename(relative))}\\.[0-9a-f]{12}\\.tmp`,
      );
    };
    for (const file of [
      'operator/ca-root-ecdsa.key',
      'operator/ca-root-falcon.key',
      'operator/ca-root-passphrase.txt',
      'genesis.json',
    ]) {
      assert.ok(syncedInStaging(file), `${file} was written without fsync`);
      assert.ok((await fs.stat(path.join(out, file))).size > 0, `${file} is empty`);
    }
    for (const file of ['operator/ca-root-ecdsa.key', 'operator/ca-root-falcon.key']) {
      assert.equal((await fs.stat(path.join(out, file))).mode & 0o777, 0o600);
    }
    assert.equal(
      (await fs.stat(path.join(out, 'operator/ca-root-passphrase.txt'))).mode & 0o777,
      0o600,
    );
    assert.ok(wasSynced(`${staging}/operator`), 'the operator directory was not fsynced');
    assert.ok(wasSynced(staging), 'the staging directory was not fsynced before the rename');
    assert.ok(
      synced.some(({ file, outExists }) => file === root && outExists),
      'the parent directory was not fsynced after the cluster was renamed into place',
    );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
