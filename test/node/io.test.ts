import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it, mock } from 'node:test';
import { writeClusterFile, type ClusterFile } from '../../src/node/cluster-file.js';
import { CliError } from '../../src/node/cli-error.js';
import { checkOutputPath, writeFileAtomically } from '../../src/node/io.js';

/**
 * The one way the CLI replaces an output file (certificates, chains, bundles, checkpoints,
 * cluster.json): readers see the old content or the new, and a failure at any step leaves the
 * old file and no temporary file behind.
 */

let dir: string;

before(async () => {
  dir = await fs.mkdtemp(path.join(tmpdir(), 'hm-io-'));
});

after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  mock.restoreAll();
});

/** The directory's entries other than `keep`: temporary files left behind. */
async function leftovers(directory: string, keep: readonly string[]): Promise<string[]> {
  return (await fs.readdir(directory)).filter((name) => !keep.includes(name));
}

const cluster: ClusterFile = {
  chainId: 'test-chain',
  createdAt: '2026-01-01T00:00:00.000Z',
  genesisFile: 'genesis.json',
  trustRootsFile: 'trust-roots.pem',
  operator: { keyFile: 'operator.key', certificateFile: 'operator.pem' },
  nodes: [
    {
      name: 'node-1',
      id: '00'.repeat(20),
      stoq: { host: '127.0.0.1', port: 4433 },
      metrics: null,
      configFile: 'node-1/config.json',
      pid: null,
    },
  ],
};

describe('writeFileAtomically', () => {
  it('writes new content with the mode asked for and leaves no temporary file', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'ok-'));
    const file = path.join(sub, 'out.pem');
    await fs.writeFile(file, 'old\n', { mode: 0o600 });
    await writeFileAtomically(file, 'new\n', { mode: 0o644 });
    assert.equal(await fs.readFile(file, 'utf8'), 'new\n');
    assert.equal((await fs.stat(file)).mode & 0o777, 0o644);
    assert.deepEqual(await leftovers(sub, ['out.pem']), []);
  });

  it('a failing rename leaves the original byte-identical and removes the temporary file', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'rename-'));
    const file = path.join(sub, 'bundle.json');
    await fs.writeFile(file, 'approved\n');
    const rename = mock.method(fs, 'rename', async () => {
      throw Object.assign(new Error('EIO: simulated rename failure'), { code: 'EIO' });
    });
    await assert.rejects(writeFileAtomically(file, 'replacement\n'), /simulated rename failure/);
    assert.equal(rename.mock.callCount(), 1);
    assert.equal(await fs.readFile(file, 'utf8'), 'approved\n');
    assert.deepEqual(await leftovers(sub, ['bundle.json']), []);
  });

  it('a failing fsync leaves the original and no temporary file', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'sync-'));
    const file = path.join(sub, 'sth.json');
    await fs.writeFile(file, 'checkpoint\n');
    const realOpen = fs.open.bind(fs);
    mock.method(fs, 'open', async (...args: Parameters<typeof fs.open>) => {
      const handle = await realOpen(...args);
      if (String(args[0]).endsWith('.tmp')) {
        mock.method(handle, 'sync', async () => {
          throw Object.assign(new Error('ENOSPC: simulated'), { code: 'ENOSPC' });
        });
      }
      return handle;
    });
    await assert.rejects(writeFileAtomically(file, 'other\n'), /ENOSPC/);
    assert.equal(await fs.readFile(file, 'utf8'), 'checkpoint\n');
    assert.deepEqual(await leftovers(sub, ['sth.json']), []);
  });

  it('refuses to replace a directory and leaves nothing behind (a real rename failure)', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'isdir-'));
    const target = path.join(sub, 'out.pem');
    await fs.mkdir(target);
    await fs.writeFile(path.join(target, 'inside'), 'x');
    await assert.rejects(writeFileAtomically(target, 'new\n'));
    assert.deepEqual(await fs.readdir(target), ['inside']);
    assert.deepEqual(await leftovers(sub, ['out.pem']), []);
  });
});

describe('writeFileAtomically keeps what the old file was', () => {
  it("keeps an existing file's mode (an owner-only file stays owner-only)", async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'mode-'));
    const file = path.join(sub, 'secret.pem');
    await fs.writeFile(file, 'old\n', { mode: 0o600 });
    await fs.chmod(file, 0o600);
    await writeFileAtomically(file, 'new\n');
    assert.equal(await fs.readFile(file, 'utf8'), 'new\n');
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  });

  it('writes through a symbolic link to its target, and the link stays a link', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'link-'));
    const real = path.join(sub, 'real.json');
    const link = path.join(sub, 'bundle.json');
    await fs.writeFile(real, 'old\n');
    await fs.symlink(real, link);
    await writeFileAtomically(link, 'new\n');
    assert.ok((await fs.lstat(link)).isSymbolicLink());
    assert.equal(await fs.readFile(real, 'utf8'), 'new\n');
    assert.deepEqual(await leftovers(sub, ['real.json', 'bundle.json']), []);
  });

  it('gives a new file 0644 less the umask', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'umask-'));
    const file = path.join(sub, 'new.pem');
    const previous = process.umask(0o077);
    try {
      await writeFileAtomically(file, 'new\n');
    } finally {
      process.umask(previous);
    }
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  });
});

describe('writeClusterFile', () => {
  it('a failing rename leaves cluster.json as it was and no .tmp file', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'cluster-'));
    const file = path.join(sub, 'cluster.json');
    await writeClusterFile(file, cluster);
    const before = await fs.readFile(file);
    mock.method(fs, 'rename', async () => {
      throw Object.assign(new Error('EXDEV: simulated'), { code: 'EXDEV' });
    });
    await assert.rejects(writeClusterFile(file, { ...cluster, chainId: 'other' }), /EXDEV/);
    assert.deepEqual(await fs.readFile(file), before);
    assert.deepEqual(await leftovers(sub, ['cluster.json']), []);
  });

  it('a rename the file system refuses leaves no .tmp file either', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'cluster-dir-'));
    const file = path.join(sub, 'cluster.json');
    await fs.mkdir(file);
    await assert.rejects(writeClusterFile(file, cluster), { code: 'EISDIR' });
    assert.deepEqual(await leftovers(sub, ['cluster.json']), []);
  });
});

describe('checkOutputPath', () => {
  it('refuses a missing directory, a file as directory and a directory as target', async () => {
    const missing = path.join(dir, 'no', 'such', 'www.pem');
    await assert.rejects(
      checkOutputPath(missing, '--out www'),
      (error: unknown) =>
        error instanceof CliError &&
        error.exitCode === 2 &&
        error.message === `--out www: directory ${path.join(dir, 'no', 'such')} does not exist`,
    );
    const file = path.join(dir, 'plain');
    await fs.writeFile(file, '');
    await assert.rejects(
      checkOutputPath(path.join(file, 'x.pem'), '--out x'),
      /is not a directory/,
    );
    const sub = await fs.mkdtemp(path.join(dir, 'target-'));
    await assert.rejects(checkOutputPath(sub, '--out'), /is a directory/);
    await checkOutputPath(path.join(sub, 'fine.pem'), '--out');
  });
});
