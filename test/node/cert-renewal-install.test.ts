import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it, mock } from 'node:test';
import { Registry } from 'prom-client';
import { decodeTransaction } from '../../src/consensus/application/index.js';
import { parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import {
  DEFAULT_RENEW_AT,
  EXPIRY_ERROR_INTERVAL_MS,
  RENEWED_LOG_MESSAGE,
  renewalDue,
  startCertRenewal,
} from '../../src/node/cert-renewal.js';
import { decodeCaBody } from '../../src/trustchain/ca-module/index.js';
import {
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
} from '../trustchain/ca-module/fixture.js';
import { caNodeRenewalIo, capturingLogger, issuedChainFile } from './cert-renewal-fixture.js';

/**
 * How cert-renewal.ts installs an issued renewal: a certificate file it cannot write (a read-only
 * mount) or a server that refuses the chain gets that write or hand-over retried — the chain is
 * presented from memory meanwhile — and never a second `renew` of the same serial; the file is
 * replaced through a symbolic link and fsynced (io.ts `writeFileAtomically`); an error is logged
 * once the presented certificate has less than a tenth of its validity left.
 */

const HOUR = 3_600_000;
const EXPIRY_METRIC = 'hypermesh_identity_certificate_expiry_timestamp_seconds';

function readOnly(target: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EROFS: read-only file system, open '${target}'`), {
    code: 'EROFS',
  });
}

describe('identity certificate renewal: installing the issued certificate', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let root: string;

  before(async () => {
    fixture = await createCaFixture({ rateLimit: { max: 100, windowSeconds: 3600 } });
    node = await fixture.openCaNode();
    root = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), 'hypermesh-cert-install-')));
  });

  afterEach(() => mock.restoreAll());

  after(async () => {
    await node?.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  const latest = (): number => node.node.store.blocks.latestHeight() as number;

  const expiryGauge = async (registry: Registry): Promise<number | undefined> =>
    (await registry.getSingleMetric(EXPIRY_METRIC)!.get()).values[0]?.value;

  it('a file it cannot write: one renewal, presented from memory, written once it can be', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'ro-'));
    const file = path.join(dir, 'self.pem');
    const { key, leaf, serial } = await issuedChainFile(fixture, node, file, 'readonly');
    const before = await fs.readFile(file, 'utf8');

    // A read-only mount: the directory refuses write access and new files.
    const access = fs.access.bind(fs);
    const open = fs.open.bind(fs);
    mock.method(fs, 'access', async (target: string, mode?: number) => {
      if (target === dir) throw readOnly(target);
      return access(target, mode);
    });
    mock.method(fs, 'open', async (...args: Parameters<typeof fs.open>) => {
      const target = String(args[0]);
      if (path.dirname(target) === dir && target.endsWith('.tmp')) throw readOnly(target);
      return open(...args);
    });

    const { pending, io } = caNodeRenewalIo(node);
    const { lines, logger } = capturingLogger('info');
    const registry = new Registry();
    const presented: Uint8Array[][] = [];
    let refuseChain = true;
    const renewal = await startCertRenewal({
      ...io,
      certificateFile: file,
      ca: fixture.config,
      privateKey: key.privateKey,
      replaceChain: (chain) => {
        // The server refuses the first hand-over too: both are retried.
        if (refuseChain) {
          refuseChain = false;
          throw new Error('not now');
        }
        presented.push([...chain]);
      },
      registry,
      logger,
      falcon: fixture.ca.falcon,
      // Due from now on; its renewal (issued at a later block time) is not, at this clock.
      now: () => new Date(renewalDue(leaf, DEFAULT_RENEW_AT)),
    });
    assert.ok(renewal !== null);
    const step = async (): Promise<void> => {
      renewal.committed(latest());
      await renewal.idle();
    };
    /** Every renew the node submits is committed and published: what it would cost the cluster. */
    const renews: Uint8Array[] = [];
    const block = async (): Promise<void> => {
      const txs = [...pending.values()];
      pending.clear();
      for (const tx of txs) {
        const body = decodeCaBody(decodeTransaction(tx).body);
        assert.ok(body.op === 'renew');
        renews.push(body.serial);
      }
      const result = node.block(txs);
      for (const outcome of result.txResults) assert.equal(outcome.code, 0, outcome.log);
      if (txs.length > 0) {
        const { tx: publish } = await publication(fixture, node, latest(), 'val-a');
        node.block([publishTx(fixture, 'val-a', publish)]);
      }
      await step();
    };
    try {
      const warned = lines.find((line) => line.level === 'error');
      assert.ok(warned !== undefined, 'an unwritable directory is an error at start');
      assert.match(String(warned.msg), /identity certificate file cannot be replaced/);
      assert.equal(warned.directory, dir);
      assert.match(String(warned.error), /EROFS/);

      await step();
      assert.equal(pending.size, 1, JSON.stringify(lines));
      await block();
      const renewed = lines.find((line) => line.msg === RENEWED_LOG_MESSAGE);
      assert.ok(renewed !== undefined, JSON.stringify(lines));
      assert.equal(renewed.written, false);
      assert.equal(renewed.presented, false);
      assert.equal(await fs.readFile(file, 'utf8'), before, 'the file is untouched');
      assert.equal(await expiryGauge(registry), leaf.notAfter.getTime() / 1000, 'still the old');
      const kept = lines.filter((line) => /kept and retried/.test(String(line.msg)));
      assert.equal(kept.length, 1);
      assert.equal(kept[0]!.level, 'error');
      assert.equal(kept[0]!.retryInBlocks, 8);
      assert.match(String(kept[0]!.writeError), /EROFS/);

      // Blocks go by; the retry hands the chain over (the file still refuses it).
      for (let i = 0; i < 8 && presented.length === 0; i++) await block();
      assert.equal(presented.length, 1, JSON.stringify(lines));
      const fresh = parseCertificate(presented[0]![0]!);
      assert.equal(fresh.serialNumber, renewed.newSerial);
      assert.ok(renewalDue(fresh, DEFAULT_RENEW_AT) > renewalDue(leaf, DEFAULT_RENEW_AT));
      assert.equal(await expiryGauge(registry), fresh.notAfter.getTime() / 1000);
      assert.equal(await fs.readFile(file, 'utf8'), before);

      // The mount becomes writable: the kept renewal is written, and nothing is renewed again.
      mock.restoreAll();
      for (let i = 0; i < 16 && (await fs.readFile(file, 'utf8')) === before; i++) await block();
      const written = pemToDerList(await fs.readFile(file, 'utf8'));
      assert.equal(parseCertificate(written[0]!).serialNumber, fresh.serialNumber);
      assert.ok(lines.some((line) => line.msg === 'renewed identity certificate installed'));
      for (let i = 0; i < 100; i++) await block();
      assert.deepEqual(renews, [serial], 'one renew of the old serial, no other');
      assert.equal(presented.length, 1);
      const counter = await registry
        .getSingleMetric('hypermesh_identity_certificate_renewals_total')!
        .get();
      const count = (result: string) =>
        counter.values.find((value) => value.labels.result === result)?.value;
      assert.equal(count('renewed'), 1);
      assert.equal(count('failed'), 0);
    } finally {
      await renewal.close();
    }
  });

  it('a symbolic link stays one: its target gets the renewal, fsynced', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'link-'));
    await fs.mkdir(path.join(dir, 'certs'));
    const target = path.join(dir, 'certs', 'node-current.pem');
    const { key, leaf } = await issuedChainFile(fixture, node, target, 'linked');
    const file = path.join(dir, 'self.pem');
    await fs.symlink(target, file);

    const open = fs.open.bind(fs);
    const synced: string[] = [];
    mock.method(fs, 'open', async (...args: Parameters<typeof fs.open>) => {
      const handle = await open(...args);
      const sync = handle.sync.bind(handle);
      mock.method(handle, 'sync', async () => {
        synced.push(String(args[0]));
        return sync();
      });
      return handle;
    });

    const { pending, io } = caNodeRenewalIo(node);
    const { lines, logger } = capturingLogger('info');
    const renewal = await startCertRenewal({
      ...io,
      certificateFile: file,
      ca: fixture.config,
      privateKey: key.privateKey,
      replaceChain: () => undefined,
      registry: new Registry(),
      logger,
      falcon: fixture.ca.falcon,
      now: () => new Date(leaf.notBefore.getTime() + (HOUR * 3) / 4),
    });
    assert.ok(renewal !== null);
    try {
      renewal.committed(latest());
      await renewal.idle();
      assert.equal(pending.size, 1, JSON.stringify(lines));
      node.block([...pending.values()]);
      pending.clear();
      const { tx: publish } = await publication(fixture, node, latest(), 'val-a');
      node.block([publishTx(fixture, 'val-a', publish)]);
      renewal.committed(latest());
      await renewal.idle();

      const renewed = lines.find((line) => line.msg === RENEWED_LOG_MESSAGE);
      assert.ok(renewed !== undefined, JSON.stringify(lines));
      assert.ok((await fs.lstat(file)).isSymbolicLink(), 'self.pem is still a link');
      const written = pemToDerList(await fs.readFile(target, 'utf8'));
      assert.equal(parseCertificate(written[0]!).serialNumber, renewed.newSerial);
      // The temporary file's content and the directory's entries.
      assert.ok(
        synced.some((name) => path.dirname(name) === path.dirname(target) && name.endsWith('.tmp')),
        JSON.stringify(synced),
      );
      assert.ok(synced.includes(path.dirname(target)), JSON.stringify(synced));
    } finally {
      await renewal.close();
    }
  });

  it('logs an error once less than a tenth of the validity is left, once an hour', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'expiry-'));
    const file = path.join(dir, 'self.pem');
    const { key, leaf } = await issuedChainFile(fixture, node, file, 'expiring');
    const { io } = caNodeRenewalIo(node);
    const { lines, logger } = capturingLogger('info');
    const validity = leaf.notAfter.getTime() - leaf.notBefore.getTime();
    let clock = new Date(leaf.notBefore.getTime() + validity * 0.85);
    const renewal = await startCertRenewal({
      ...io,
      // Every renewal is refused: the certificate runs towards its end.
      submit: () => Promise.resolve({ ok: false, code: 'CA_RATE_LIMITED', message: 'not now' }),
      certificateFile: file,
      ca: fixture.config,
      privateKey: key.privateKey,
      replaceChain: () => undefined,
      registry: new Registry(),
      logger,
      falcon: fixture.ca.falcon,
      now: () => clock,
    });
    assert.ok(renewal !== null);
    const errors = () => lines.filter((line) => line.level === 'error');
    const step = async (): Promise<void> => {
      renewal.committed(latest());
      await renewal.idle();
    };
    try {
      await step();
      assert.deepEqual(errors(), [], '15 % left: failures are warnings');
      assert.ok(lines.some((line) => line.msg === 'identity certificate renewal failed'));

      clock = new Date(leaf.notBefore.getTime() + validity * 0.95);
      await step();
      await step();
      assert.equal(errors().length, 1, JSON.stringify(lines));
      const soon = errors()[0]!;
      assert.equal(soon.msg, 'identity certificate expires soon and has not been renewed');
      assert.equal(soon.serial, leaf.serialNumber);
      assert.equal(soon.notAfter, leaf.notAfter.toISOString());
      assert.equal(soon.secondsLeft, Math.floor((validity * 0.05) / 1000));

      clock = new Date(clock.getTime() + EXPIRY_ERROR_INTERVAL_MS);
      await step();
      assert.equal(errors().length, 2);
      assert.equal(errors()[1]!.msg, 'identity certificate has expired');
    } finally {
      await renewal.close();
    }
  });
});
