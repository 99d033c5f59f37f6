import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CREATE_VALIDATOR_OP,
  compareAddresses,
  formatConsensusAddress,
} from '../../src/caesar/index.js';
import {
  makeValidator,
  stakingGenesis,
  stakingTx,
  type TestValidator,
} from '../caesar/staking-fixture.js';
import { openCaesarRpcFixture, type CaesarRpcFixture } from './caesar-rpc-fixture.js';

/**
 * Pages of `validators` read at different heights (no `height` given) while validators are
 * created between them: `next` is the last address listed and the next page starts strictly
 * after it, so no validator that exists throughout is listed twice or left out. (With an index,
 * a validator created before the cursor shifted the list: one was listed twice, another never.)
 */
let fx: CaesarRpcFixture;
const existing = [makeValidator(), makeValidator(), makeValidator()].sort((a, b) =>
  compareAddresses(a.address, b.address),
);

/** A validator whose address sorts before (`below`) or after `than`. */
function validatorBeside(than: TestValidator, below: boolean): TestValidator {
  for (let attempt = 0; attempt < 1_000; attempt++) {
    const candidate = makeValidator();
    if (compareAddresses(candidate.address, than.address) < 0 === below) return candidate;
  }
  throw new Error('no validator address on the wanted side in 1,000 tries');
}

/** Before the first page's last entry: an index cursor would list that entry again. */
const early = validatorBeside(existing[1]!, true);
/** After the first page: a walk that starts after its cursor lists it. */
const late = validatorBeside(existing[2]!, false);

before(async () => {
  fx = await openCaesarRpcFixture(
    stakingGenesis({
      validators: existing.map((validator) => ({ validator, selfBond: 10_000n })),
      balances: [
        { address: early.account, amount: 5_000n },
        { address: late.account, amount: 5_000n },
      ],
    }),
  );
});

after(() => fx.close());

const create = (validator: TestValidator): Uint8Array =>
  stakingTx(validator.sender, {
    op: CREATE_VALIDATOR_OP,
    fee: 0n,
    bond: 2_000n,
    pqKey: validator.pqKey,
    commission: 0,
    storageRoot: validator.storageRoot,
  });

describe('hypermesh.caesar.v1 validators pages across heights', () => {
  it('lists each validator once when validators are created between pages', async () => {
    const first = await fx.caesar.validators({ limit: 2 });
    assert.deepEqual(
      first.view.validators.map((v) => v.address),
      existing.slice(0, 2).map((v) => formatConsensusAddress(v.address)),
    );
    assert.equal(first.view.next, formatConsensusAddress(existing[1]!.address));

    fx.commitBlock([create(early), create(late)]);
    const second = await fx.caesar.validators({ after: first.view.next!, limit: 2 });
    assert.equal(second.height, first.height + 1, 'read at the next height');
    assert.equal(second.view.total, 5);

    const seen = [...first.view.validators, ...second.view.validators].map((v) => v.address);
    assert.equal(new Set(seen).size, seen.length, `listed twice: ${seen.join(', ')}`);
    for (const validator of [...existing, late]) {
      assert.ok(seen.includes(formatConsensusAddress(validator.address)), validator.id);
    }
    // Created before the cursor after the walk had passed it: the walk began before it existed.
    assert.equal(seen.includes(formatConsensusAddress(early.address)), false);
    assert.equal(second.view.next, null);
  });
});
