import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import { RENEWED_LOG_MESSAGE, startCertRenewal } from '../../src/node/cert-renewal.js';
import {
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
} from '../trustchain/ca-module/fixture.js';
import { caNodeRenewalIo, capturingLogger, issuedChainFile } from './cert-renewal-fixture.js';

/**
 * cert-renewal.ts's `onRenewed` hook (how DoQ and ACME HTTPS follow a renewal): called once the
 * new chain is written and handed to STOQ, with that chain; a hook that throws is logged at
 * `error` and the renewal still counts as done.
 */

describe('identity certificate renewal: the onRenewed hook', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let dir: string;

  before(async () => {
    fixture = await createCaFixture({ rateLimit: { max: 10, windowSeconds: 3600 } });
    node = await fixture.openCaNode();
    dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-cert-renewal-hook-'));
  });

  after(async () => {
    await node?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const latest = (): number => node.node.store.blocks.latestHeight() as number;

  it('gets the written chain after STOQ; what it throws is logged, the renewal stands', async () => {
    const file = path.join(dir, 'hook.pem');
    const { key, leaf } = await issuedChainFile(fixture, node, file, 'hook');

    const { pending, io } = caNodeRenewalIo(node);
    const order: string[] = [];
    const hooked: (readonly Uint8Array[])[] = [];
    const { lines, logger } = capturingLogger();
    const registry = new Registry();
    const renewal = await startCertRenewal({
      ...io,
      certificateFile: file,
      renewAt: 0,
      ca: fixture.config,
      privateKey: key.privateKey,
      replaceChain: () => void order.push('stoq'),
      onRenewed: (chain) => {
        order.push('hook');
        hooked.push([...chain]);
        throw new Error('a follower broke');
      },
      registry,
      logger,
      falcon: fixture.ca.falcon,
      now: () => new Date(leaf.notBefore.getTime() + 60_000),
    });
    assert.ok(renewal !== null);
    const step = async () => {
      renewal.committed(latest());
      await renewal.idle();
    };
    try {
      await step();
      assert.equal(pending.size, 1, JSON.stringify(lines));
      const committed = node.block([...pending.values()]);
      pending.clear();
      assert.equal(committed.txResults[0]!.code, 0, committed.txResults[0]!.log);
      await step();
      assert.deepEqual(hooked, [], 'not published yet: nothing handed on');
      const { tx: publish } = await publication(fixture, node, latest(), 'val-a');
      node.block([publishTx(fixture, 'val-a', publish)]);
      await step();

      assert.deepEqual(order, ['stoq', 'hook']);
      const written = pemToDerList(await readFile(file, 'utf8'));
      assert.deepEqual(hooked, [written]);
      const renewed = lines.find((line) => line.msg === RENEWED_LOG_MESSAGE);
      assert.ok(renewed !== undefined, JSON.stringify(lines));
      assert.equal(renewed.newSerial, parseCertificate(written[0]!).serialNumber);
      const broke = lines.find((line) => line.level === 'error');
      assert.ok(broke !== undefined, JSON.stringify(lines));
      assert.equal(broke.serial, renewed.newSerial);
      assert.match(String(broke.error), /a follower broke/);
      assert.ok(!lines.some((line) => line.msg === 'identity certificate renewal failed'));
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
});
