import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DriverErrorCode } from '../../../src/consensus/driver/errors.js';
import { GuardedSigner, type ValidatorKeys } from '../../../src/consensus/driver/guarded-signer.js';
import { readSignerState } from '../../../src/consensus/driver/signer-state.js';
import { precommitPqSignBytes } from '../../../src/consensus/messages.js';
import type { VoteRequest } from '../../../src/consensus/types.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { makeBlock, makeGenesis, makeValidators } from '../sim/fixtures.js';
import { falcon, makeIdentities, tempDir, type ValidatorIdentity } from './fixtures.js';

const CHAIN = 'signer-test';
const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

let identity: ValidatorIdentity;
let keys: ValidatorKeys;
before(async () => {
  [identity] = (await makeIdentities(1)) as [ValidatorIdentity];
  keys = { privateKey: identity.privateKey, falconSecretKey: identity.pqSecretKey, falcon };
});

function open(path: string, address = identity.address): Promise<GuardedSigner> {
  return GuardedSigner.open({ chainId: CHAIN, address, keys, path, now: () => 1_000 });
}

function request(overrides: Partial<VoteRequest> = {}): VoteRequest {
  return {
    type: 'prevote',
    height: 5,
    round: 1,
    blockHash: sha256(Uint8Array.of(1)),
    validator: identity.address,
    notBefore: 10,
    pq: false,
    ...overrides,
  };
}

describe('GuardedSigner', () => {
  it('persists before answering, and after a restart reuses or refuses — never re-signs', async () => {
    const path = join(dir, 'votes.cbor');
    const signer = await open(path);
    const first = await signer.signVote(request());
    assert.equal(first.kind, 'signed');
    const persisted = await readSignerState(path, identity.address);
    assert.equal(persisted?.step, 'prevote');
    assert.equal(persisted?.round, 1);

    const restarted = await open(path);
    const again = await restarted.signVote(request());
    assert.equal(again.kind, 'reused');
    assert.deepEqual(
      again.kind === 'reused' && again.value,
      first.kind === 'signed' && first.value,
    );
    const other = await restarted.signVote(request({ blockHash: null }));
    assert.deepEqual(other, { kind: 'refused', reason: 'conflict' });
    const earlier = await restarted.signVote(request({ round: 0 }));
    assert.deepEqual(earlier, { kind: 'refused', reason: 'round-regression' });
    const older = await restarted.signVote(request({ height: 4, round: 9 }));
    assert.deepEqual(older, { kind: 'refused', reason: 'height-regression' });
    assert.deepEqual(restarted.counters, { signed: 0, reused: 1, refused: 3, failed: 0 });
  });

  it('asks mayStillSign before every signature and refuses when it says no (not-holder)', async () => {
    const path = join(dir, 'holder.cbor');
    let holder = true;
    let asked = 0;
    const signer = await GuardedSigner.open({
      chainId: CHAIN,
      address: identity.address,
      keys,
      path,
      now: () => 1_000,
      mayStillSign: () => {
        asked += 1;
        return holder;
      },
    });
    assert.equal((await signer.signVote(request())).kind, 'signed');
    holder = false;
    assert.deepEqual(await signer.signVote(request({ round: 2 })), {
      kind: 'refused',
      reason: 'not-holder',
    });
    assert.equal(asked, 2);
    assert.equal((await readSignerState(path, identity.address))?.round, 1, 'nothing persisted');
  });

  it('adds a FALCON-1024 attestation to precommits for a block, one request at a time', async () => {
    const path = join(dir, 'pq.cbor');
    const signer = await open(path);
    const precommit = request({ type: 'precommit', pq: true });
    // Both requested at once: the slow FALCON signature still lands first on disk.
    const [pq, next] = await Promise.all([
      signer.signVote(precommit),
      signer.signVote(request({ round: 2 })),
    ]);
    assert.equal(pq.kind, 'signed');
    assert.equal(next.kind, 'signed');
    const vote = pq.kind === 'signed' ? pq.value : assert.fail('not signed');
    assert.ok(vote.pqSignature !== undefined);
    assert.ok(
      falcon.verify(
        vote.pqSignature,
        precommitPqSignBytes(CHAIN, { ...vote, blockHash: vote.blockHash! }),
        identity.pqPublicKey,
      ),
    );
    assert.equal((await readSignerState(path, identity.address))?.round, 2);
  });

  it('rebuilds a reused proposal around the requested block and refuses another valid round', async () => {
    const path = join(dir, 'proposal.cbor');
    const { set } = makeValidators([1]);
    const block = makeBlock(makeGenesis(set), identity.address);
    const hash = sha256(Uint8Array.of(7));
    const proposal = { height: 1, round: 0, block, validRound: -1, proposer: identity.address };
    const signed = await (await open(path)).signProposal(proposal, hash);
    assert.equal(signed.kind, 'signed');
    const restarted = await open(path);
    const reused = await restarted.signProposal({ ...proposal }, hash);
    assert.equal(reused.kind, 'reused');
    assert.equal(reused.kind === 'reused' && reused.value.block, block);
    assert.deepEqual(
      reused.kind === 'reused' && reused.value.signature,
      signed.kind === 'signed' && signed.value.signature,
    );
    assert.deepEqual(await restarted.signProposal({ ...proposal, validRound: 0 }, hash), {
      kind: 'refused',
      reason: 'valid-round-conflict',
    });
  });

  it('releases nothing when its record cannot be persisted, and signs nothing afterwards', async () => {
    const signer = await open(join(dir, 'missing-dir', 'state.cbor'));
    assert.deepEqual(await signer.signVote(request()), {
      kind: 'refused',
      reason: 'persist-failed',
    });
    assert.deepEqual(await signer.signVote(request({ round: 3 })), {
      kind: 'refused',
      reason: 'persist-failed',
    });
    assert.deepEqual(signer.counters, { signed: 0, reused: 0, refused: 0, failed: 2 });
  });

  it('refuses to start from a damaged or foreign record', async () => {
    const damaged = join(dir, 'damaged.cbor');
    writeFileSync(damaged, Uint8Array.of(0xa1, 0x61));
    await assert.rejects(open(damaged), { code: DriverErrorCode.SIGNER_STATE_CORRUPT });
    const foreign = join(dir, 'foreign.cbor');
    await (await open(foreign)).signVote(request());
    await assert.rejects(open(foreign, 'ab'.repeat(20)), {
      code: DriverErrorCode.SIGNER_STATE_FOREIGN,
    });
  });

  it('refuses after close', async () => {
    const signer = await open(join(dir, 'closed.cbor'));
    signer.close();
    assert.deepEqual(await signer.signVote(request()), { kind: 'refused', reason: 'closed' });
    await signer.idle();
  });
});
