import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { main } from '../../src/node/cli.js';
import { packageVersion } from '../../src/node/version.js';

const run = promisify(execFile);

/** Runs the CLI in-process with its output captured. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    out: (text) => (stdout += text),
    err: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hypermesh CLI', () => {
  it('prints its version', async () => {
    const result = await cli(['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `hypermesh ${packageVersion()}\n`);
    assert.match(packageVersion(), /^\d+\.\d+\.\d+/);
  });

  it('lists every command in --help', async () => {
    const result = await cli(['--help']);
    assert.equal(result.code, 0);
    for (const name of ['demo', 'dev-ca init', 'dev-ca issue', 'stoq serve', 'stoq ping']) {
      assert.ok(result.stdout.includes(`  ${name} `), `help lists ${name}`);
    }
  });

  it('gives each command its own --help', async () => {
    const result = await cli(['dev-ca', 'issue', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /usage: hypermesh dev-ca issue --dir DIR --name NAME/);
  });

  it('rejects unknown commands, subcommands and options with exit code 2', async () => {
    const unknown = await cli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const group = await cli(['dev-ca', 'explode']);
    assert.equal(group.code, 2);
    assert.match(group.stderr, /"dev-ca" has no "explode"/);
    const option = await cli(['dev-ca', 'init', '--bogus']);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /Unknown option '--bogus'/);
    const missing = await cli(['dev-ca', 'init', '--dir', path.join(dir, 'x')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--cluster is required/);
  });

  it('creates a dev CA and node identities, and refuses to overwrite them', async () => {
    const ca = path.join(dir, 'ca');
    const init = await cli(['dev-ca', 'init', '--dir', ca, '--cluster', 'testnet']);
    assert.equal(init.code, 0, init.stderr);
    const again = await cli(['dev-ca', 'init', '--dir', ca, '--cluster', 'testnet']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /a CA already exists/);

    const issue = await cli([
      'dev-ca',
      'issue',
      '--dir',
      ca,
      '--name',
      'n1',
      '--role',
      'validator',
    ]);
    assert.equal(issue.code, 0, issue.stderr);
    assert.match(issue.stdout, /spiffe:\/\/testnet\/validator\/n1/);
    assert.equal((await stat(path.join(ca, 'n1.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(path.join(ca, 'root.key'))).mode & 0o777, 0o600);
    const pem = await readFile(path.join(ca, 'n1.pem'), 'utf8');
    assert.match(pem, /^-----BEGIN CERTIFICATE-----/);

    const twice = await cli(['dev-ca', 'issue', '--dir', ca, '--name', 'n1']);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /already exists/);
    const role = await cli(['dev-ca', 'issue', '--dir', ca, '--name', 'n2', '--role', 'admin']);
    assert.equal(role.code, 2);
    assert.match(role.stderr, /--role must be one of validator, node, client/);
    const noCa = await cli(['dev-ca', 'issue', '--dir', path.join(dir, 'nope'), '--name', 'n3']);
    assert.equal(noCa.code, 2);
    assert.match(noCa.stderr, /no development CA/);
  });

  it('encrypts keys with a passphrase from the environment', async () => {
    const ca = path.join(dir, 'ca-secret');
    process.env.TEST_CA_PASSPHRASE = 'correct horse battery staple';
    try {
      const init = await cli([
        'dev-ca',
        'init',
        '--dir',
        ca,
        '--cluster',
        'c2',
        '--passphrase-env',
        'TEST_CA_PASSPHRASE',
      ]);
      assert.equal(init.code, 0, init.stderr);
      const withoutPassphrase = await cli(['dev-ca', 'issue', '--dir', ca, '--name', 'n1']);
      assert.equal(withoutPassphrase.code, 1);
      assert.match(withoutPassphrase.stderr, /PASSPHRASE_REQUIRED/);
      const ok = await cli([
        'dev-ca',
        'issue',
        '--dir',
        ca,
        '--name',
        'n1',
        '--ca-passphrase-env',
        'TEST_CA_PASSPHRASE',
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      const unset = await cli([
        'dev-ca',
        'issue',
        '--dir',
        ca,
        '--name',
        'n2',
        '--ca-passphrase-env',
        'NOT_SET_ANYWHERE',
      ]);
      assert.equal(unset.code, 2);
      assert.match(unset.stderr, /NOT_SET_ANYWHERE .* is not set/);
    } finally {
      delete process.env.TEST_CA_PASSPHRASE;
    }
  });

  it('the installed bin answers --version (built dist/)', async () => {
    const bin = path.resolve(import.meta.dirname, '..', '..', 'bin', 'hypermesh.js');
    const { stdout } = await run(process.execPath, [bin, '--version']);
    assert.equal(stdout.trim(), `hypermesh ${packageVersion()}`);
  });
});

describe('error messages', () => {
  it('are printed with control and bidi characters escaped, line breaks kept', async () => {
    const { code, stderr } = await cli([
      'node',
      'start',
      '--config',
      '/tmp/no-such\u001b[2J\u202e',
    ]);
    assert.equal(code, 2);
    assert.ok(!stderr.includes('\u001b') && !stderr.includes('\u202e'), JSON.stringify(stderr));
    assert.match(stderr, /no-such\\u001b\[2J\\u202e/);
    assert.ok(stderr.endsWith('\n'));
  });
});
