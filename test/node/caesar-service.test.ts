import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DELEGATE_OP,
  JailReason,
  VoteOption,
  encodeGovTx,
  encodeStakingTx,
  encodeTransfer,
  signHybridTx,
  type ValidatorRecord,
} from '../../src/caesar/index.js';
import { defaultFalcon } from '../../src/crypto/falcon.js';
import { caesarTxType, slashedInBlock } from '../../src/node/caesar-service.js';
import { makeSender } from '../consensus/application/fixture.js';

/** A validator record with only what `slashedInBlock` reads set to something meaningful. */
function record(jailed: JailReason, slashedAt?: number): ValidatorRecord {
  return {
    publicKey: new Uint8Array(32),
    pqPublicKey: new Uint8Array(0),
    storageRoot: new Uint8Array(32),
    commissionBps: 0,
    tokens: 1_000_000n,
    shares: 1_000_000n,
    power: 0,
    jailed,
    jailedUntil: 0,
    ...(slashedAt === undefined ? {} : { slashedAt }),
  };
}

describe('slashedInBlock (the slashing-events metric)', () => {
  it('counts a validator slashed at the height, also when it was already jailed (a re-slash)', () => {
    const jailedBefore = record(JailReason.EQUIVOCATION, 40);
    assert.equal(
      slashedInBlock(50, record(JailReason.EQUIVOCATION, 50), () => jailedBefore),
      true,
    );
    assert.equal(
      slashedInBlock(50, record(JailReason.EQUIVOCATION, 50), () => null),
      true,
    );
  });

  it('does not count evidence that slashed nothing (the watermark held)', () => {
    const unchanged = record(JailReason.EQUIVOCATION, 40);
    assert.equal(
      slashedInBlock(50, unchanged, () => unchanged),
      false,
    );
    assert.equal(
      slashedInBlock(50, null, () => null),
      false,
    );
    assert.equal(
      slashedInBlock(50, record(JailReason.NONE), () => record(JailReason.NONE)),
      false,
    );
  });

  it('reads the record at the height before only for records from before the watermark', () => {
    let read = 0;
    const before = () => {
      read++;
      return record(JailReason.NONE);
    };
    assert.equal(slashedInBlock(50, record(JailReason.EQUIVOCATION, 50), before), true);
    assert.equal(read, 0);
    assert.equal(slashedInBlock(50, record(JailReason.EQUIVOCATION), before), true);
    assert.equal(read, 1);
    assert.equal(
      slashedInBlock(50, record(JailReason.EQUIVOCATION), () => record(JailReason.EQUIVOCATION)),
      false,
    );
    assert.equal(slashedInBlock(50, record(JailReason.DOWNTIME), before), false);
  });
});

describe('caesarTxType (the type label of hypermesh_caesar_txs_total)', () => {
  it("labels a hybrid account's transaction with the op it wraps", async () => {
    const owner = makeSender();
    const backend = defaultFalcon();
    const falcon = await backend.generateKeyPair();
    const wrap = (body: Uint8Array): Promise<Uint8Array> =>
      signHybridTx({
        chainId: 'test-chain',
        sender: owner.publicKey,
        sequence: 0,
        body,
        falcon,
        backend,
      });
    const transfer = encodeTransfer({ to: new Uint8Array(32).fill(1), amount: 5n, fee: 0n });
    const delegate = encodeStakingTx({
      op: DELEGATE_OP,
      fee: 0n,
      amount: 5n,
      validator: new Uint8Array(20).fill(2),
    });
    const vote = encodeGovTx({ op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.YES });
    assert.deepEqual(
      [transfer, delegate, vote, await wrap(transfer), await wrap(delegate), await wrap(vote)].map(
        caesarTxType,
      ),
      ['transfer', 'delegate', 'gov/vote', 'transfer', 'delegate', 'gov/vote'],
    );
    assert.equal(caesarTxType(Uint8Array.of(0xff)), 'malformed');
  });
});
