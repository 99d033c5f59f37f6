import assert from 'node:assert/strict';
import { mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';

/**
 * `cert request` generates the certificate's private key itself unless given a CSR. It refuses
 * before requesting anything when `PREFIX.key` is already there — a file or a link, dangling
 * too — rather than issuing a certificate and then overwriting (or writing through) that path.
 */

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm-cert-key-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const request = (prefix: string) =>
  runCli(['cert', 'request', '--out', prefix, '--dns', 'x.hypermesh', '--cluster', dir]);

describe('cert request: the private key file', () => {
  it('refuses an existing PREFIX.key and leaves it as it was', async () => {
    const prefix = path.join(dir, 'existing');
    await writeFile(`${prefix}.key`, 'not mine\n', { mode: 0o644 });
    const result = await request(prefix);
    assert.notEqual(result.code, 0);
    assert.match(result.err, /existing\.key exists; remove it or choose another --out PREFIX/);
    assert.equal(await readFile(`${prefix}.key`, 'utf8'), 'not mine\n');
  });

  it('refuses a dangling link at PREFIX.key and does not create its target', async () => {
    const prefix = path.join(dir, 'linked');
    const target = path.join(dir, 'elsewhere.key');
    await symlink(target, `${prefix}.key`);
    const result = await request(prefix);
    assert.notEqual(result.code, 0);
    assert.match(result.err, /linked\.key exists/);
    assert.equal(await readlink(`${prefix}.key`), target);
    await assert.rejects(readFile(target), { code: 'ENOENT' });
  });
});
