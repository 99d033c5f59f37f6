import assert from 'node:assert/strict';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConsensusDriver,
  decideMissingSignerState,
  DriverErrorCode,
  DriverRejection,
  GuardedSigner,
  readSignerRecord,
  readSignerState,
  walSigningHistory,
  type SignedInfo,
  type ValidatorKeys,
} from '../../../src/consensus/driver/index.js';
import type { VoteRequest } from '../../../src/consensus/types.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { openStore } from '../../../src/storage/index.js';
import {
  conflictingMessages,
  falcon,
  makeGenesisDocument,
  makeIdentities,
  tempDir,
  TestCluster,
  waitUntil,
  watchDriver,
  type ValidatorIdentity,
} from './fixtures.js';
import { KvTestApp, TestMempool, TestProofs } from './test-app.js';

const NO_WAL = { checkpointHeight: null, signedHeight: null } as const;
const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

let identities: ValidatorIdentity[];
before(async () => {
  identities = await makeIdentities(5);
});

function keysOf(identity: ValidatorIdentity): ValidatorKeys {
  return { privateKey: identity.privateKey, falconSecretKey: identity.pqSecretKey, falcon };
}

/** The height of every vote and proposal `validator` broadcast from message `from` on. */
function broadcastHeights(cluster: TestCluster, validator: string, from: number): number[] {
  const heights: number[] = [];
  for (const { message } of cluster.hub.sent.slice(from)) {
    if (message.kind === 'vote' && message.vote.validator === validator) {
      heights.push(message.vote.height);
    } else if (message.kind === 'proposal' && message.proposal.proposer === validator) {
      heights.push(message.proposal.height);
    }
  }
  return heights;
}

describe('signer state missing: the decision', () => {
  it('guards only a validator with a past and no record', () => {
    const base = { hasRecord: false, isValidator: true, committedHeight: 7, wal: NO_WAL };
    assert.deepEqual(decideMissingSignerState({ ...base, policy: 'refuse' }), {
      kind: 'refuse',
      knownHeight: 7,
    });
    assert.deepEqual(decideMissingSignerState({ ...base, policy: { waitHeights: 4 } }), {
      kind: 'fence',
      knownHeight: 7,
      fenceHeight: 11,
    });
    // The WAL can know more than a store restored from an older copy.
    assert.deepEqual(
      decideMissingSignerState({
        ...base,
        wal: { checkpointHeight: 9, signedHeight: 10 },
        policy: { waitHeights: 2 },
      }),
      { kind: 'fence', knownHeight: 10, fenceHeight: 12 },
    );
    assert.deepEqual(
      decideMissingSignerState({
        ...base,
        committedHeight: 0,
        wal: { checkpointHeight: null, signedHeight: 1 },
        policy: 'refuse',
      }),
      { kind: 'refuse', knownHeight: 1 },
    );
    assert.deepEqual(decideMissingSignerState({ ...base, hasRecord: true, policy: 'refuse' }), {
      kind: 'start',
    });
    // No record and nothing to guard: the empty record is written, so that the directory says
    // from now on that its key has signed nothing here (a follower turned validator restarts).
    for (const mark of [
      { ...base, isValidator: false },
      { ...base, committedHeight: 0 },
    ]) {
      assert.deepEqual(decideMissingSignerState({ ...mark, policy: 'refuse' }), { kind: 'mark' });
    }
    // A WAL with the key's own signatures is never marked "signed nothing", validator or not.
    assert.deepEqual(
      decideMissingSignerState({
        ...base,
        isValidator: false,
        committedHeight: 0,
        wal: { checkpointHeight: 5, signedHeight: 7 },
        policy: 'refuse',
      }),
      { kind: 'start' },
    );
  });

  it('a fence refuses every height up to it, survives a restart, and gives way to a record', async () => {
    const identity = identities[0]!;
    const path = join(dir, 'fenced.signer');
    const open = (): Promise<GuardedSigner> =>
      GuardedSigner.open({
        chainId: 'fence-test',
        address: identity.address,
        keys: keysOf(identity),
        path,
        now: () => 1_000,
      });
    const request = (height: number): VoteRequest => ({
      type: 'prevote',
      height,
      round: 0,
      blockHash: sha256(Uint8Array.of(height)),
      validator: identity.address,
      notBefore: 0,
      pq: false,
    });
    const signer = await open();
    assert.equal(signer.hasRecord(), false);
    assert.throws(() => signer.setFence(-1), RangeError);
    assert.equal(existsSync(path), false, 'a refused fence writes nothing');
    signer.setFence(5);
    assert.deepEqual(await readSignerRecord(path, identity.address), {
      kind: 'fence',
      fenceHeight: 5,
    });
    assert.equal(await readSignerState(path, identity.address), null);
    assert.throws(() => signer.setFence(9), RangeError, 'a fence only for a signer with no record');

    const restarted = await open();
    assert.equal(restarted.hasRecord(), true);
    assert.equal(restarted.fenceHeight(), 5);
    for (const height of [1, 4, 5]) {
      assert.deepEqual(await restarted.signVote(request(height)), {
        kind: 'refused',
        reason: 'fenced',
      });
    }
    assert.equal(restarted.counters.refused, 3);
    assert.equal((await restarted.signVote(request(6))).kind, 'signed');
    assert.equal((await readSignerState(path, identity.address))?.height, 6);
    assert.equal(restarted.fenceHeight(), null);

    // Past the fence the ordinary guard takes over.
    const again = await open();
    assert.equal(again.fenceHeight(), null);
    assert.deepEqual(await again.signVote(request(5)), {
      kind: 'refused',
      reason: 'height-regression',
    });
  });
});

describe('signer state missing: the driver', () => {
  it('refuses a restored validator without its signer state and writes nothing', async () => {
    const genesis = makeGenesisDocument(identities.slice(0, 4));
    // Node 4 holds keys but is in no validator set: it follows, with the empty record (fence 0).
    const cluster = new TestCluster(identities, genesis);
    try {
      // Brand-new validators (empty store, no WAL, no signer state) start normally.
      await cluster.startAll();
      await cluster.waitForHeight(3);
      const victim = 3;
      const paths = cluster.paths(victim);
      // A validator started last may store the first heights decided by the others' votes.
      await waitUntil(
        () => cluster.node(victim).driver.status().signer!.signed >= 1,
        'the victim to sign',
      );
      assert.ok(existsSync(paths.signer), 'a running validator keeps a signer record');
      await cluster.stop(victim);
      const history = walSigningHistory(paths.wal);
      assert.ok((history.checkpointHeight ?? 0) >= 1, 'the WAL recorded stored heights');
      const walCopy = join(dir, 'victim.wal');
      copyFileSync(paths.wal, walCopy);

      // The data directory is rebuilt from the store alone (docs/storage.md "Snapshots").
      rmSync(paths.signer);
      rmSync(paths.wal);
      const refused = cluster.create(victim);
      const storedBefore = refused.height;
      assert.ok(storedBefore >= 1);
      await assert.rejects(refused.driver.start(), (error: Error & { code?: string }) => {
        assert.equal(error.code, DriverErrorCode.SIGNER_STATE_MISSING);
        assert.ok(error.message.includes(paths.signer), 'the message names the file');
        assert.ok(error.message.includes('waitHeights'), 'the message names the override');
        return true;
      });
      assert.equal(existsSync(paths.signer), false, 'no signer record written');
      assert.equal(existsSync(paths.wal), false, 'no WAL written');
      assert.equal(refused.height, storedBefore, 'the store is unchanged');
      await cluster.stop(victim);

      // The WAL alone shows a past too: an empty store beside the old WAL is refused.
      const emptyStore = openStore(join(dir, 'empty.sqlite'));
      try {
        const driver = new ConsensusDriver({
          genesis,
          store: emptyStore,
          walPath: walCopy,
          signerStatePath: join(dir, 'empty.signer'),
          self: keysOf(identities[victim]!),
          app: new KvTestApp(emptyStore),
          mempool: new TestMempool(),
          network: cluster.hub.join('empty', emptyStore),
          proofs: new TestProofs(),
        });
        watchDriver(driver);
        await assert.rejects(driver.start(), { code: DriverErrorCode.SIGNER_STATE_MISSING });
        assert.equal(existsSync(join(dir, 'empty.signer')), false);
        cluster.hub.leave('empty');
      } finally {
        emptyStore.close();
      }

      // A node whose key is in no validator set restarts without a signer record.
      const follower = 4;
      await cluster.waitForHeight(3, 20_000, [cluster.node(follower)]);
      await cluster.stop(follower);
      assert.deepEqual(
        await readSignerRecord(cluster.paths(follower).signer, identities[follower]!.address),
        { kind: 'fence', fenceHeight: 0 },
        'a follower keeps the empty record: its key has signed nothing here',
      );
      await cluster.start(follower);
      assert.equal(cluster.node(follower).driver.status().running, true);
    } finally {
      await cluster.close();
    }
  });

  it('with waitHeights it starts, signs nothing up to the fence, then signs again', async () => {
    const genesis = makeGenesisDocument(identities.slice(0, 4));
    const cluster = new TestCluster(identities.slice(0, 4), genesis);
    try {
      await cluster.startAll();
      await cluster.waitForHeight(2);
      await waitUntil(
        () => cluster.node(3).driver.status().signer!.signed >= 2,
        'the victim to sign',
      );
      // Two of four stop together: the other two cannot decide, so the chain waits at the
      // height the victim last voted at — the moment a restart without its record is unsafe.
      const victim = 3;
      const helper = 2;
      const paths = cluster.paths(victim);
      await Promise.all([cluster.stop(victim), cluster.stop(helper)]);
      const lastSigned = await readSignerState(paths.signer, identities[victim]!.address);
      assert.ok(lastSigned !== null);
      const stored = (() => {
        const store = openStore(paths.store);
        try {
          return store.blocks.latestHeight() ?? 0;
        } finally {
          store.close();
        }
      })();
      rmSync(paths.signer);
      rmSync(paths.wal);

      const waitHeights = 3;
      const fenceHeight = stored + waitHeights;
      assert.ok(fenceHeight >= lastSigned.height, 'the fence covers what the key signed');
      const sentFrom = cluster.hub.sent.length;
      const warnings: string[] = [];
      const node = cluster.create(victim, {
        signerStateMissing: { waitHeights },
        log: (level, message) => {
          if (level === 'warn') warnings.push(message);
        },
      });
      const signed: SignedInfo[] = [];
      node.driver.on('signed', (info) => signed.push(info));
      await node.driver.start();
      assert.ok(warnings.some((message) => message.includes('fence')));
      assert.deepEqual(await readSignerRecord(paths.signer, identities[victim]!.address), {
        kind: 'fence',
        fenceHeight,
      });

      // Asked to vote at the height it may have voted at already, it refuses.
      await waitUntil(
        () => node.rejections.some((info) => info.reason === DriverRejection.SIGN_REFUSED),
        'the fenced validator to be asked to sign and refuse',
      );
      assert.ok(node.driver.status().signer!.refused >= 1);
      await cluster.start(helper);
      await waitUntil(
        () => signed.some((info) => info.height > fenceHeight),
        () => `the fenced validator to sign above ${fenceHeight} (at ${node.height})`,
        40_000,
      );
      await cluster.waitForHeight(fenceHeight + 1);

      assert.deepEqual(
        signed.filter((info) => info.height <= fenceHeight),
        [],
        'nothing signed at or below the fence',
      );
      const heights = broadcastHeights(cluster, identities[victim]!.address, sentFrom);
      assert.ok(heights.length > 0, 'the validator votes again');
      assert.deepEqual(
        heights.filter((height) => height <= fenceHeight),
        [],
        'nothing broadcast at or below the fence',
      );
      assert.deepEqual(conflictingMessages(cluster.hub), []);
      assert.ok(
        (await readSignerState(paths.signer, identities[victim]!.address))!.height > fenceHeight,
      );
    } finally {
      await cluster.close();
    }
  });
});
