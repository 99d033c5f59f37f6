import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';

/**
 * Bad input is refused with exit code 2 and a precise message before anything is started,
 * generated, submitted or written (docs/cli.md). The commands are given a --cluster or --config
 * that does not exist: a refusal that came after loading it would name that file instead, so
 * each message below proves the check ran first.
 */

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hm-cli-refusals-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cert request: an --out PREFIX that cannot be written', () => {
  const request = (prefix: string) =>
    runCli([
      'cert',
      'request',
      '--out',
      prefix,
      '--dns',
      'x.hypermesh',
      '--cluster',
      path.join(dir, 'no-cluster'),
    ]);

  it('refuses a PREFIX in a missing directory before requesting anything', async () => {
    const missing = path.join(dir, 'no', 'such', 'dir');
    const result = await request(path.join(missing, 'www'));
    assert.equal(result.code, 2, result.err);
    assert.match(
      result.err,
      new RegExp(
        `--out ${missing}/www: directory ${missing} does not exist`.replaceAll('/', '\\/'),
      ),
    );
    await assert.rejects(stat(path.join(dir, 'no')), { code: 'ENOENT' });
  });

  it('refuses a PREFIX under a file, and a directory where PREFIX.pem goes', async () => {
    const file = path.join(dir, 'plain-file');
    await writeFile(file, 'x');
    const under = await request(path.join(file, 'www'));
    assert.equal(under.code, 2, under.err);
    assert.match(under.err, /plain-file is not a directory/);
    const sub = await mkdtemp(path.join(dir, 'pem-dir-'));
    await mkdir(path.join(sub, 'www.pem'));
    const clash = await request(path.join(sub, 'www'));
    assert.equal(clash.code, 2, clash.err);
    assert.match(clash.err, /www\.pem is a directory/);
    assert.equal((await readdir(sub)).length, 1, 'no PREFIX.key was written');
  });

  it('refuses a --proof-out that is the key, certificate or chain it writes, or its input', async () => {
    const sub = await mkdtemp(path.join(dir, 'proof-out-'));
    const prefix = path.join(sub, 'www');
    for (const target of ['www.key', 'www.pem', 'www.chain.pem']) {
      const result = await runCli([
        'cert',
        'request',
        '--out',
        prefix,
        '--proof-out',
        path.join(sub, target),
        '--dns',
        'x.hypermesh',
        '--cluster',
        path.join(dir, 'no-cluster'),
      ]);
      assert.equal(result.code, 2, result.err);
      assert.match(result.err, new RegExp(`would overwrite .*${target.replaceAll('.', '\\.')}`));
    }
    const renew = await runCli([
      'cert',
      'renew',
      path.join(sub, 'old.pem'),
      '--out',
      prefix,
      '--proof-out',
      path.join(sub, 'old.pem'),
    ]);
    assert.equal(renew.code, 2, renew.err);
    assert.match(renew.err, /would overwrite .*old\.pem/);
    const proof = await runCli([
      'cert',
      'proof',
      path.join(sub, 'old.pem'),
      '--out',
      path.join(sub, 'old.pem'),
    ]);
    assert.equal(proof.code, 2, proof.err);
    assert.match(proof.err, /would overwrite the certificate/);
    assert.deepEqual(await readdir(sub), [], 'nothing was written');
  });

  it('refuses a bad --timeout-ms before generating a key', async () => {
    const result = await runCli([
      'cert',
      'request',
      '--out',
      path.join(dir, 'www'),
      '--timeout-ms',
      '5',
      '--cluster',
      path.join(dir, 'no-cluster'),
    ]);
    assert.equal(result.code, 2);
    assert.match(result.err, /--timeout-ms must be an integer from 100 to 3600000, got "5"/);
  });
});

describe('stoq serve and stoq ping: numeric options', () => {
  const config = () => path.join(dir, 'no-such-config.json');

  for (const value of ['0', '3000000000', '1'.repeat(400), '-5', '1e3']) {
    it(`stoq serve refuses --ping-interval-ms ${value.slice(0, 12)} before starting`, async () => {
      const result = await runCli([
        'stoq',
        'serve',
        '--config',
        config(),
        `--ping-interval-ms=${value}`,
      ]);
      assert.equal(result.code, 2, result.err);
      assert.match(result.err, /--ping-interval-ms must be an integer from 1 to 2147483647, got/);
      assert.equal(result.out, '', 'no ready line');
    });
  }

  it('stoq ping refuses a --count that is not a safe integer within its maximum', async () => {
    for (const value of ['1'.repeat(400), '9007199254740993', '100001', '0']) {
      const result = await runCli([
        'stoq',
        'ping',
        '--config',
        config(),
        '--peer',
        'b',
        '--count',
        value,
      ]);
      assert.equal(result.code, 2, result.err);
      assert.match(result.err, /--count must be an integer from 1 to 100000, got/);
    }
  });
});

describe('dev-ca: --validity-days', () => {
  it('init refuses a lifetime past 36500 days and writes nothing', async () => {
    const ca = path.join(dir, 'dev-ca');
    const result = await runCli([
      'dev-ca',
      'init',
      '--dir',
      ca,
      '--cluster',
      'test',
      '--validity-days',
      '3000000',
    ]);
    assert.equal(result.code, 2, result.err);
    assert.match(result.err, /--validity-days must be an integer from 1 to 36500, got "3000000"/);
    await assert.rejects(stat(ca), { code: 'ENOENT' });
    const help = await runCli(['dev-ca', 'init', '--help']);
    assert.match(help.out, /--validity-days N {5}root certificate lifetime, 1 to 36500/);
  });

  it('issue refuses it before reading the CA', async () => {
    const result = await runCli([
      'dev-ca',
      'issue',
      '--dir',
      path.join(dir, 'no-ca'),
      '--name',
      'n1',
      '--validity-days',
      '36501',
    ]);
    assert.equal(result.code, 2, result.err);
    assert.match(result.err, /--validity-days must be an integer from 1 to 36500/);
  });
});

describe('output files in a directory that is not there', () => {
  it('ct sth --out and ca intermediate list --write-bundle refuse before asking a node', async () => {
    const missing = path.join(dir, 'gone');
    const cluster = path.join(dir, 'no-cluster');
    const sth = await runCli(['ct', 'sth', '--cluster', cluster, '--out', `${missing}/sth.json`]);
    assert.equal(sth.code, 2, sth.err);
    assert.match(sth.err, /--out .*sth\.json: directory .*gone does not exist/);
    const list = await runCli([
      'ca',
      'intermediate',
      'list',
      '--cluster',
      cluster,
      '--write-bundle',
      `${missing}/bundle.json`,
    ]);
    assert.equal(list.code, 2, list.err);
    assert.match(list.err, /--write-bundle .*bundle\.json: directory .*gone does not exist/);
  });
});
