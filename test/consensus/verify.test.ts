import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createFalcon, type FalconKeyPair } from '../../src/crypto/falcon.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import type { HeightContext } from '../../src/consensus/height-context.js';
import { precommitPqSignBytes } from '../../src/consensus/messages.js';
import { precommitPqMessage } from '../../src/consensus/signer.js';
import { startTendermint } from '../../src/consensus/tendermint.js';
import { createValidatorSet } from '../../src/consensus/validator-set.js';
import {
  checkVote,
  ed25519SignatureVerifier,
  MessageRejection,
  pqSignatureVerifier,
  type VerificationContext,
} from '../../src/consensus/verify.js';
import {
  CHAIN_ID,
  makeConfig,
  makeGenesis,
  makeValidators,
  makeVote,
  TEST_TIMEOUTS,
} from './sim/fixtures.js';

describe('FALCON-1024 precommit signatures', () => {
  const falcon = createFalcon();
  const { validators } = makeValidators([1, 1, 1, 1], 17);
  let pqKeys: FalconKeyPair[] = [];
  let context: VerificationContext;
  const hash = new Uint8Array(32).fill(7);

  before(async () => {
    pqKeys = await Promise.all(validators.map(() => falcon.generateKeyPair()));
    const set = createValidatorSet(
      validators.map((v, i) => ({
        publicKey: v.publicKey,
        power: 1,
        pqPublicKey: pqKeys[i]!.publicKey,
      })),
    );
    context = {
      chainId: CHAIN_ID,
      validators: set,
      verifier: pqSignatureVerifier(falcon),
      requirePq: true,
    };
  });

  it('accepts a precommit whose FALCON signature covers its height, round and block', async () => {
    const vote = makeVote(validators[0]!, 'precommit', 3, 1, hash);
    const message = precommitPqMessage(CHAIN_ID, vote)!;
    const pqSignature = await falcon.sign(message, pqKeys[0]!.secretKey);
    assert.equal(checkVote(context, { ...vote, pqSignature }), undefined);
  });

  it('refuses a missing, forged or misplaced FALCON signature', async () => {
    const vote = makeVote(validators[0]!, 'precommit', 3, 1, hash);
    assert.equal(checkVote(context, vote), MessageRejection.MISSING_PQ_SIGNATURE);
    const otherRound = precommitPqSignBytes(CHAIN_ID, { height: 3, round: 2, blockHash: hash });
    const wrong = await falcon.sign(otherRound, pqKeys[0]!.secretKey);
    assert.equal(
      checkVote(context, { ...vote, pqSignature: wrong }),
      MessageRejection.BAD_PQ_SIGNATURE,
    );
    const otherKey = await falcon.sign(precommitPqMessage(CHAIN_ID, vote)!, pqKeys[1]!.secretKey);
    assert.equal(
      checkVote(context, { ...vote, pqSignature: otherKey }),
      MessageRejection.BAD_PQ_SIGNATURE,
    );
    // Nil precommits and prevotes carry none.
    assert.equal(checkVote(context, makeVote(validators[0]!, 'precommit', 3, 1, null)), undefined);
    assert.equal(
      checkVote(context, {
        ...makeVote(validators[0]!, 'prevote', 3, 1, hash),
        pqSignature: wrong,
      }),
      MessageRejection.MALFORMED,
    );
    // Required but not verifiable: refused.
    assert.equal(
      checkVote(
        { ...context, verifier: ed25519SignatureVerifier },
        { ...vote, pqSignature: wrong },
      ),
      MessageRejection.BAD_PQ_SIGNATURE,
    );
  });
});

describe('configuration and context', () => {
  const { validators, set } = makeValidators([1, 1, 1, 1], 19);
  const context = makeGenesis(set);

  function refuses(run: () => unknown, fragment: string): void {
    assert.throws(run, (error: unknown) => {
      assert.ok(error instanceof ConsensusError, String(error));
      assert.equal(error.code, ConsensusErrorCode.INVALID_CONFIG);
      assert.match(error.message, new RegExp(fragment));
      return true;
    });
  }

  it('refuses a configuration it cannot run with', () => {
    const self = validators[0]!.address;
    refuses(() => startTendermint(makeConfig(self, { chainId: '' }), context), 'chain id');
    refuses(
      () =>
        startTendermint(
          makeConfig(self, { timeouts: { ...TEST_TIMEOUTS, prevoteMs: -1 } }),
          context,
        ),
      'prevoteMs',
    );
    refuses(
      () =>
        startTendermint(
          makeConfig(self, {
            timeouts: { ...TEST_TIMEOUTS, proposeMs: 0, prevoteMs: 0, precommitMs: 0 },
          }),
          context,
        ),
      'all be zero',
    );
    refuses(() => startTendermint(makeConfig(self, { requirePq: true }), context), 'FALCON');
    refuses(
      () => startTendermint(makeConfig(self, { maxFutureRounds: 0 }), context),
      'maxFutureRounds',
    );
  });

  it('refuses an incoherent height context', () => {
    const config = makeConfig(validators[0]!.address);
    const broken: [HeightContext, string][] = [
      [{ ...context, height: 0 }, 'positive integer'],
      [{ ...context, parent: { ...context.parent, hash: new Uint8Array(31) } }, '32 bytes'],
      [{ ...context, parent: { ...context.parent, time: -5 } }, 'parent time'],
      [{ ...context, height: 2 }, 'previous height'],
    ];
    for (const [candidate, fragment] of broken)
      refuses(() => startTendermint(config, candidate), fragment);
  });
});
