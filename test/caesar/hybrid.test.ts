import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { bytesItem, mapItem, textItem, uintItem } from '../../src/caesar/cbor.js';
import {
  CAESAR_RESULT_CODES,
  CaesarError,
  CaesarErrorCode,
  HYBRID_ADDRESS_TAG,
  HYBRID_OP,
  ProposalStatus,
  VoteOption,
  accountAddress,
  caesarBalanceQuery,
  caesarDelegationQuery,
  createCaesarModule,
  caesarInitialState,
  decodeCaesarBody,
  ed25519Address,
  encodeCaesarBody,
  encodeGovTx,
  encodeHybridTx,
  encodeStakingTx,
  encodeTransfer,
  formatAddress,
  hybridAddress,
  hybridSigningMessage,
  signHybridTransfer,
  signHybridTx,
  verifyCaesarBalance,
  verifyCaesarDelegation,
} from '../../src/caesar/index.js';
import type { CaesarGenesis, HybridTx, TransferInput } from '../../src/caesar/index.js';
import { TransactionErrorCode, decodeTransaction } from '../../src/consensus/application/index.js';
import { ConsensusError, ConsensusErrorCode } from '../../src/consensus/errors.js';
import type { BlockExecutionResult, TxCheckResult } from '../../src/consensus/app.js';
import { concatBytes } from '../../src/crypto/bytes.js';
import {
  FALCON1024_PUBLIC_KEY_BYTES,
  createFalcon,
  type FalconBackend,
  type FalconKeyPair,
} from '../../src/crypto/falcon.js';
import { CHAIN_ID, makeSender, openNode, tx } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';
import { TOKEN, addressOf, transfer } from './caesar-fixture.js';
import { TEST_GOV, depositsOf, proposalOf, votesOf } from './gov-fixture.js';
import {
  balanceOf as stateBalanceOf,
  bondedOf,
  makeValidator,
  runBlock,
  stakingGenesis,
  stakingTx,
  unbondingOf,
  unbondingTotalOf,
} from './staking-fixture.js';

const codes = (result: BlockExecutionResult) => result.txResults.map((r) => r.code);
const refusal = (result: TxCheckResult): string => (result.ok ? 'ok' : result.code);
const refusalMessage = (result: TxCheckResult): string => (result.ok ? '' : result.message);

/**
 * A hybrid account: an Ed25519 sender and a FALCON-1024 key pair. `sequence` is the hybrid
 * account's own next sequence; `sender.sequence` the Ed25519 key's, which it does not use.
 */
interface HybridAccount {
  readonly sender: Sender;
  readonly falcon: FalconKeyPair;
  readonly address: Uint8Array;
  sequence: number;
}

/** A block holding `bytes` is invalid (the transaction is inadmissible), and nothing is stored. */
function assertInvalidBlock(node: TestNode, bytes: Uint8Array, reason: string, what: string): void {
  const height = node.nextHeight();
  assert.throws(
    () => node.executeAndCommit([bytes]),
    (error: unknown) =>
      error instanceof ConsensusError &&
      error.code === ConsensusErrorCode.INVALID_BLOCK &&
      error.detail['reason'] === reason,
    `${what}: the block is invalid`,
  );
  assert.equal(node.nextHeight(), height, `${what}: no block stored`);
}

describe('hybrid account addresses', () => {
  const ed = Uint8Array.from({ length: 32 }, (_, i) => i);
  const pq = Uint8Array.from({ length: FALCON1024_PUBLIC_KEY_BYTES }, (_, i) =>
    i === 0 ? 0x0a : (i * 7) & 0xff,
  );

  it('is the tagged hash of both keys, pinned by a vector, never the Ed25519-only address', () => {
    const tag = createHash('sha256').update(HYBRID_ADDRESS_TAG).digest();
    const length = (n: number) => {
      const out = Buffer.alloc(8);
      out.writeBigUInt64BE(BigInt(n));
      return out;
    };
    const independent = createHash('sha256')
      .update(tag)
      .update(tag)
      .update(length(32))
      .update(ed)
      .update(length(FALCON1024_PUBLIC_KEY_BYTES))
      .update(pq)
      .digest('hex');
    const address = formatAddress(hybridAddress(ed, pq));
    assert.equal(address, independent);
    assert.equal(address, 'be1cb53302c58b9f3441950a066159e94fe7820fe6b396db564c5c61b2c7c256');
    assert.notEqual(address, formatAddress(ed25519Address(ed)));
    const key = { kind: 'ed25519+falcon-1024', publicKey: ed, falconPublicKey: pq } as const;
    assert.equal(formatAddress(accountAddress(key)), address);
    const other = pq.slice();
    other[100] = (other[100] ?? 0) ^ 1;
    assert.notEqual(formatAddress(hybridAddress(ed, other)), address);
    assert.throws(() => hybridAddress(ed.subarray(1), pq), RangeError);
    assert.throws(() => hybridAddress(ed, pq.subarray(1)), RangeError);
  });
});

describe('hybrid transfers in the application', () => {
  let falcon: FalconBackend;
  let alice: HybridAccount;
  let mallory: FalconKeyPair;
  const bob = makeSender();
  let node: TestNode;

  before(async () => {
    falcon = createFalcon();
    const sender = makeSender();
    const keys = await falcon.generateKeyPair();
    alice = {
      sender,
      falcon: keys,
      address: hybridAddress(sender.publicKey, keys.publicKey),
      sequence: 0,
    };
    mallory = await falcon.generateKeyPair();
    const genesis: CaesarGenesis = {
      token: { ...TOKEN, supply: 1_000_000n },
      allocations: [
        { address: alice.address, amount: 600_000n },
        { address: addressOf(bob), amount: 400_000n },
      ],
    };
    node = await openNode({
      modules: [createCaesarModule({ falcon })],
      initialState: caesarInitialState(genesis),
    });
    node.executeAndCommit([]);
  });
  after(async () => {
    await node?.close();
  });

  const balanceOf = (address: Uint8Array) =>
    verifyCaesarBalance(address, node.app.query(caesarBalanceQuery(address)));

  /** A hybrid transfer from `account` at `sequence`, with `edit` applied to its signed body. */
  async function hybridTx(
    account: HybridAccount,
    input: TransferInput,
    sequence: number,
    edit: (body: Uint8Array) => Uint8Array = (body) => body,
  ): Promise<Uint8Array> {
    const body = await signHybridTransfer({
      chainId: CHAIN_ID,
      sender: account.sender.publicKey,
      sequence,
      transfer: encodeTransfer(input),
      falcon: account.falcon,
      backend: falcon,
    });
    return tx(account.sender, edit(body), { module: 'caesar', sequence });
  }

  const fields = (body: Uint8Array): HybridTx => {
    const decoded = decodeCaesarBody(body);
    assert.equal(decoded.op, HYBRID_OP);
    return decoded as HybridTx;
  };

  it('round-trips its body, and signs the envelope fields with its own tag', async () => {
    const bytes = await hybridTx(alice, { to: addressOf(bob), amount: 5n }, 3);
    const envelope = decodeTransaction(bytes);
    const body = fields(envelope.body);
    assert.deepEqual(encodeCaesarBody(body), envelope.body);
    assert.deepEqual(body.inner, { op: 'transfer', to: addressOf(bob), fee: 0n, amount: 5n });
    assert.equal(body.seq, 3);
    // A FALCON-1024 signature and key fit far below the 32 KiB body limit.
    assert.ok(envelope.size < 4 * 1024, `${envelope.size} bytes`);
    const message = hybridSigningMessage(CHAIN_ID, alice.sender.publicKey, body);
    assert.ok(falcon.verify(body.pqSig, message, body.pqKey));
    const elsewhere = hybridSigningMessage('other-chain', alice.sender.publicKey, body);
    assert.ok(!falcon.verify(body.pqSig, elsewhere, body.pqKey));
  });

  it('a hybrid transfer is admitted and applied, debiting the hybrid address only', async () => {
    const sequence = alice.sequence++;
    const bytes = await hybridTx(alice, { to: addressOf(bob), amount: 1_000n, fee: 10n }, sequence);
    assert.equal(refusal(node.app.checkTx(bytes)), 'ok');
    const result = node.executeAndCommit([bytes]);
    assert.deepEqual(codes(result), [0]);
    assert.equal(balanceOf(alice.address), 600_000n - 1_010n);
    assert.equal(balanceOf(addressOf(bob)), 401_000n);
    assert.equal(balanceOf(ed25519Address(alice.sender.publicKey)), 0n);
    const events = result.txResults[0]?.events ?? [];
    assert.equal(events[0]?.attributes['from'], formatAddress(alice.address));
  });

  it('an Ed25519-only transfer by the same key spends from the Ed25519 address, not the hybrid one', () => {
    const plain = transfer(alice.sender, { to: addressOf(bob), amount: 1n });
    assert.equal(refusal(node.app.checkTx(plain)), CaesarErrorCode.INSUFFICIENT_FUNDS);
    const before = balanceOf(alice.address);
    assert.deepEqual(codes(node.executeAndCommit([plain])), [
      CAESAR_RESULT_CODES[CaesarErrorCode.INSUFFICIENT_FUNDS],
    ]);
    assert.equal(balanceOf(alice.address), before);
  });

  it('refuses missing, bad, foreign and misbound FALCON signatures at admission and execution', async () => {
    const to = addressOf(bob);
    const withoutSig = (body: Uint8Array): Uint8Array => {
      const { tx: inner, seq, pqKey } = fields(body);
      return mapItem({
        op: textItem(HYBRID_OP),
        tx: bytesItem(inner),
        seq: uintItem(seq),
        pqKey: bytesItem(pqKey),
      });
    };
    const flipSig = (body: Uint8Array): Uint8Array => {
      const decoded = fields(body);
      const pqSig = decoded.pqSig.slice();
      pqSig[pqSig.length - 1] = (pqSig[pqSig.length - 1] ?? 0) ^ 0x01;
      return encodeHybridTx({ ...decoded, pqSig });
    };
    const foreignKey = (body: Uint8Array): Uint8Array =>
      encodeHybridTx({ ...fields(body), pqKey: mallory.publicKey });
    const shortKey = (body: Uint8Array): Uint8Array =>
      encodeHybridTx({ ...fields(body), pqKey: mallory.publicKey.subarray(1) });
    const otherSeq = (body: Uint8Array): Uint8Array => {
      const decoded = fields(body);
      return encodeHybridTx({ ...decoded, seq: decoded.seq + 1 });
    };
    /**
     * Bodies that do not decode use the Ed25519 key's sequence and are refused by the module;
     * those whose FALCON half does not verify are not admissible at all (no sequence used);
     * another FALCON key is another hybrid account, with its own sequence.
     */
    const mallorys: HybridAccount = {
      ...alice,
      falcon: mallory,
      address: hybridAddress(alice.sender.publicKey, mallory.publicKey),
      sequence: 0,
    };
    type Outcome =
      | { readonly refused: CaesarErrorCode; readonly uses: Sender | HybridAccount }
      | { readonly inadmissible: CaesarErrorCode };
    const cases: [string, (sequence: number) => Promise<Uint8Array>, Outcome][] = [
      [
        'no FALCON signature',
        (s) => hybridTx(alice, { to, amount: 1n }, s, withoutSig),
        { refused: CaesarErrorCode.HYBRID_SIGNATURE_MISSING, uses: alice.sender },
      ],
      [
        'a flipped FALCON signature bit',
        (s) => hybridTx(alice, { to, amount: 1n }, s, flipSig),
        { inadmissible: CaesarErrorCode.HYBRID_BAD_SIGNATURE },
      ],
      [
        "another FALCON key than the signer's",
        (s) => hybridTx(alice, { to, amount: 1n }, s, foreignKey),
        { inadmissible: CaesarErrorCode.HYBRID_BAD_SIGNATURE },
      ],
      [
        'a FALCON key of the wrong size',
        (s) => hybridTx(alice, { to, amount: 1n }, s, shortKey),
        { refused: CaesarErrorCode.HYBRID_INVALID_KEY, uses: alice.sender },
      ],
      [
        "a seq that is not the envelope's",
        (s) => hybridTx(alice, { to, amount: 1n }, s, otherSeq),
        { inadmissible: CaesarErrorCode.HYBRID_SEQUENCE_MISMATCH },
      ],
      [
        // Whoever holds the Ed25519 key and a FALCON key of its own controls another account.
        'the Ed25519 key with a FALCON key of its own',
        (s) => hybridTx(mallorys, { to, amount: 1n }, s),
        { refused: CaesarErrorCode.INSUFFICIENT_FUNDS, uses: mallorys },
      ],
    ];
    for (const [what, make, outcome] of cases) {
      const before = balanceOf(alice.address);
      if ('inadmissible' in outcome) {
        const bytes = await make(alice.sequence);
        const checked = node.app.checkTx(bytes);
        assert.equal(
          refusal(checked),
          TransactionErrorCode.BAD_ACCOUNT_PROOF,
          `${what}: admission`,
        );
        const message = refusalMessage(checked);
        assert.ok(message.includes(outcome.inadmissible), `${what}: ${message}`);
        assert.equal(refusal(node.app.checkTx(bytes)), TransactionErrorCode.BAD_ACCOUNT_PROOF);
        assertInvalidBlock(node, bytes, TransactionErrorCode.BAD_ACCOUNT_PROOF, what);
      } else {
        const bytes = await make(outcome.uses.sequence++);
        assert.equal(refusal(node.app.checkTx(bytes)), outcome.refused, `${what}: admission`);
        // Asked again: the remembered admission of these exact bytes gives the same answer.
        assert.equal(refusal(node.app.checkTx(bytes)), outcome.refused, `${what}: again`);
        assert.deepEqual(
          codes(node.executeAndCommit([bytes])),
          [CAESAR_RESULT_CODES[outcome.refused]],
          `${what}: execution`,
        );
      }
      assert.equal(balanceOf(alice.address), before, `${what}: nothing moved`);
    }
    // None of that used the hybrid account's next sequence.
    const good = await hybridTx(alice, { to, amount: 1n }, alice.sequence++);
    assert.deepEqual(codes(node.executeAndCommit([good])), [0]);
  });

  it('a committed hybrid transfer cannot be replayed, as it was or under a new sequence', async () => {
    const sequence = alice.sequence++;
    const original = await hybridTx(alice, { to: addressOf(bob), amount: 7n }, sequence);
    assert.deepEqual(codes(node.executeAndCommit([original])), [0]);
    assert.equal(refusal(node.app.checkTx(original)), TransactionErrorCode.SEQUENCE_USED);
    assertInvalidBlock(node, original, TransactionErrorCode.SEQUENCE_USED, 'the same bytes');
    // Re-signed with the Ed25519 key for the account's next sequence: the body's FALCON half
    // is bound to the old one.
    const replay = tx(alice.sender, decodeTransaction(original).body, {
      module: 'caesar',
      sequence: alice.sequence,
    });
    const checked = node.app.checkTx(replay);
    assert.equal(refusal(checked), TransactionErrorCode.BAD_ACCOUNT_PROOF);
    assert.ok(refusalMessage(checked).includes(CaesarErrorCode.HYBRID_SEQUENCE_MISMATCH));
    assertInvalidBlock(node, replay, TransactionErrorCode.BAD_ACCOUNT_PROOF, 'a new sequence');
  });

  it('admission remembers bytes, not transactions: a valid one does not vouch for a tampered copy', async () => {
    const sequence = alice.sequence;
    const good = await hybridTx(alice, { to: addressOf(bob), amount: 3n }, sequence);
    const decoded = fields(decodeTransaction(good).body);
    const pqSig = decoded.pqSig.slice();
    pqSig[50] = (pqSig[50] ?? 0) ^ 0x80;
    // The same sender, sequence and transfer; only the FALCON signature differs (the envelope
    // is re-signed with the Ed25519 key, as someone who broke it could), so the hash differs.
    const tampered = tx(alice.sender, encodeHybridTx({ ...decoded, pqSig }), {
      module: 'caesar',
      sequence,
    });
    const badProof = TransactionErrorCode.BAD_ACCOUNT_PROOF;
    assert.equal(refusal(node.app.checkTx(tampered)), badProof);
    assert.equal(refusal(node.app.checkTx(good)), 'ok');
    assert.equal(refusal(node.app.checkTx(tampered)), badProof);
    assert.equal(refusal(node.app.checkTx(good)), 'ok');
    assertInvalidBlock(node, tampered, badProof, 'the tampered copy');
    assert.deepEqual(codes(node.executeAndCommit([good])), [0]);
    alice.sequence++;
  });

  it('refuses a hybrid body that wraps a validator-key op or another hybrid body, or is malformed', () => {
    const decoded = (body: Uint8Array) => () => decodeCaesarBody(body);
    const refusedWith = (code: CaesarErrorCode) => (error: unknown) =>
      error instanceof CaesarError && error.code === code;
    const base = {
      op: textItem(HYBRID_OP),
      seq: uintItem(0),
      pqKey: bytesItem(mallory.publicKey),
      pqSig: bytesItem(concatBytes(Uint8Array.of(0x3a), new Uint8Array(600))),
    };
    const createValidator = encodeCaesarBody({
      op: 'create-validator',
      fee: 0n,
      bond: 1n,
      pqKey: mallory.publicKey,
      commission: 0,
      storageRoot: new Uint8Array(32),
    });
    const unjail = encodeCaesarBody({ op: 'unjail', fee: 0n });
    const delegate = encodeCaesarBody({
      op: 'delegate',
      fee: 0n,
      amount: 1n,
      validator: new Uint8Array(20),
    });
    const inner = bytesItem(encodeTransfer({ to: addressOf(bob), amount: 1n }));
    assert.throws(
      decoded(mapItem({ ...base, tx: bytesItem(unjail) })),
      refusedWith(CaesarErrorCode.HYBRID_VALIDATOR_OP),
    );
    assert.throws(
      decoded(mapItem({ ...base, tx: bytesItem(createValidator) })),
      refusedWith(CaesarErrorCode.HYBRID_VALIDATOR_OP),
    );
    assert.throws(
      decoded(
        mapItem({
          ...base,
          tx: bytesItem(encodeCaesarBody({ op: 'edit-validator', fee: 0n, commission: 100 })),
        }),
      ),
      refusedWith(CaesarErrorCode.HYBRID_VALIDATOR_OP),
    );
    // A hybrid body small enough to wrap (the shortest FALCON signature) is still refused.
    const shortSig = bytesItem(concatBytes(Uint8Array.of(0x3a), new Uint8Array(41)));
    assert.throws(
      decoded(
        mapItem({ ...base, tx: bytesItem(mapItem({ ...base, pqSig: shortSig, tx: inner })) }),
      ),
      refusedWith(CaesarErrorCode.HYBRID_UNSUPPORTED_OP),
    );
    const wrapped = decodeCaesarBody(mapItem({ ...base, tx: bytesItem(delegate) }));
    assert.equal(wrapped.op, HYBRID_OP);
    assert.equal((wrapped as HybridTx).inner.op, 'delegate');
    assert.throws(
      decoded(mapItem({ ...base, tx: inner, pqSig: bytesItem(new Uint8Array(10)) })),
      refusedWith(CaesarErrorCode.HYBRID_BAD_SIGNATURE),
    );
    assert.throws(decoded(mapItem(base)), refusedWith(CaesarErrorCode.MALFORMED_BODY));
    assert.throws(
      decoded(mapItem({ ...base, tx: inner, extra: uintItem(1) })),
      refusedWith(CaesarErrorCode.UNKNOWN_FIELD),
    );
    assert.throws(
      decoded(mapItem({ ...base, tx: bytesItem(mapItem({ ...base, tx: inner })) })),
      refusedWith(CaesarErrorCode.MALFORMED_BODY),
    );
  });
});

describe('hybrid accounts in staking and governance', () => {
  let falcon: FalconBackend;
  let carol: HybridAccount;
  let node: TestNode;
  const v = [makeValidator(), makeValidator()] as const;

  before(async () => {
    falcon = createFalcon();
    const sender = makeSender();
    const keys = await falcon.generateKeyPair();
    carol = {
      sender,
      falcon: keys,
      address: hybridAddress(sender.publicKey, keys.publicKey),
      sequence: 0,
    };
    const genesis: CaesarGenesis = {
      ...stakingGenesis({
        validators: v.map((validator) => ({ validator, selfBond: 1_000n })),
        balances: [
          { address: carol.address, amount: 5_000n },
          ...v.map((validator) => ({ address: validator.account, amount: 100n })),
        ],
      }),
      governance: TEST_GOV,
    };
    node = await openNode({
      modules: [createCaesarModule({ falcon })],
      initialState: caesarInitialState(genesis),
    });
    runBlock(node); // height 1 writes the genesis state
  });
  after(async () => {
    await node?.close();
  });

  const balance = (address: Uint8Array) => stateBalanceOf(node, address);
  const delegated = (delegator: Uint8Array) =>
    verifyCaesarDelegation(
      v[0].address,
      delegator,
      node.app.query(caesarDelegationQuery(v[0].address, delegator)),
    );

  /** `body` wrapped for `account` at `sequence` (its next unless given), `edit` applied. */
  async function wrapped(
    body: Uint8Array,
    options: {
      readonly account?: HybridAccount;
      readonly sequence?: number;
      readonly signedFor?: number;
      readonly edit?: (body: Uint8Array) => Uint8Array;
    } = {},
  ): Promise<Uint8Array> {
    const account = options.account ?? carol;
    const sequence = options.sequence ?? account.sequence++;
    const signed = await signHybridTx({
      chainId: CHAIN_ID,
      sender: account.sender.publicKey,
      sequence: options.signedFor ?? sequence,
      body,
      falcon: account.falcon,
      backend: falcon,
    });
    return tx(account.sender, (options.edit ?? ((b) => b))(signed), {
      module: 'caesar',
      sequence,
    });
  }

  /** Only the router's sequence keys changed (a refused transaction writes nothing else). */
  function onlySequences(result: BlockExecutionResult, what: string): void {
    const keys = result.changes.map(({ key }) => new TextDecoder().decode(key.subarray(0, 5)));
    assert.ok(
      keys.every((key) => key === 'acct/'),
      `${what}: only sequences may change, got ${keys.join(', ')}`,
    );
  }

  it('delegates, proposes with its deposit, votes with its stake and unbonds to the hybrid address', async () => {
    // Block 2: Carol delegates 2,000 to v0 (fee 10).
    const delegate = await wrapped(
      encodeStakingTx({ op: 'delegate', fee: 10n, amount: 2_000n, validator: v[0].address }),
    );
    assert.equal(refusal(node.app.checkTx(delegate)), 'ok');
    let result = runBlock(node, [delegate]);
    assert.deepEqual(codes(result), [0]);
    assert.equal(balance(carol.address), 5_000n - 2_010n);
    assert.equal(delegated(carol.address), 2_000n);
    assert.equal(delegated(ed25519Address(carol.sender.publicKey)), 0n);
    assert.equal(bondedOf(node), 4_000n);
    const event = (result.txResults[0]?.events ?? []).find((e) => e.type === 'caesar/delegate');
    assert.equal(event?.attributes['delegator'], formatAddress(carol.address));

    // The same Ed25519 key alone acts for another account, which has nothing bonded.
    const plain = stakingTx(carol.sender, {
      op: 'unbond',
      fee: 0n,
      amount: 1n,
      validator: v[0].address,
    });
    assert.equal(refusal(node.app.checkTx(plain)), CaesarErrorCode.INSUFFICIENT_BOND);
    onlySequences(runBlock(node, [plain]), 'Ed25519-only unbond'); // block 3

    // Block 4: a proposal from the hybrid account: its deposit (100) and fee (5) are Carol's.
    const propose = await wrapped(
      encodeGovTx({
        op: 'gov/submit-proposal',
        fee: 5n,
        title: 'a lower deposit',
        // At most 1 % of the supply (7,200): 72.
        changes: [{ name: 'minDeposit', value: 60n }],
        deposit: 100n,
      }),
    );
    assert.equal(refusal(node.app.checkTx(propose)), 'ok');
    result = runBlock(node, [propose]);
    assert.deepEqual(codes(result), [0]);
    assert.equal(balance(carol.address), 2_990n - 105n);
    assert.equal(depositsOf(node), 100n);
    const proposal = proposalOf(node, 1);
    assert.ok(proposal);
    assert.deepEqual(proposal.proposer, carol.address);
    assert.equal(proposal.votingEnd, 4 + TEST_GOV.votingPeriod);

    // Block 5: Carol votes yes, weighted by her bonded stake.
    const vote = await wrapped(
      encodeGovTx({ op: 'gov/vote', fee: 1n, proposal: 1, option: VoteOption.YES }),
    );
    assert.equal(refusal(node.app.checkTx(vote)), 'ok');
    assert.deepEqual(codes(runBlock(node, [vote])), [0]);
    assert.deepEqual(votesOf(node, 1), [{ voter: carol.address, option: VoteOption.YES }]);
    assert.equal(balance(carol.address), 2_885n - 1n);

    // Block 6: Carol unbonds 500; the tally at the end of block 7 weighs what is still bonded.
    const unbond = await wrapped(
      encodeStakingTx({ op: 'unbond', fee: 0n, amount: 500n, validator: v[0].address }),
    );
    assert.equal(refusal(node.app.checkTx(unbond)), 'ok');
    assert.deepEqual(codes(runBlock(node, [unbond])), [0]);
    assert.equal(delegated(carol.address), 1_500n);
    const [entry] = unbondingOf(node, carol.address);
    assert.ok(entry);
    assert.equal(entry.amount, 500n);
    assert.deepEqual(unbondingOf(node, ed25519Address(carol.sender.publicKey)), []);
    assert.equal(unbondingTotalOf(node), 500n);

    runBlock(node); // block 7: voting ends; quorum reached, the deposit returns to Carol
    const tallied = proposalOf(node, 1);
    assert.equal(tallied?.status, ProposalStatus.PASSED);
    assert.deepEqual(tallied?.tally, { yes: 1_500n, no: 0n, abstain: 0n, bonded: 3_500n });
    assert.equal(depositsOf(node), 0n);
    assert.equal(balance(carol.address), 2_884n + 100n);

    // The unbonding completes at the end of its block, to the hybrid address.
    while (node.nextHeight() < entry.completionHeight) runBlock(node);
    assert.equal(balance(carol.address), 2_984n);
    runBlock(node);
    assert.deepEqual(unbondingOf(node, carol.address), []);
    assert.equal(unbondingTotalOf(node), 0n);
    assert.equal(balance(carol.address), 2_984n + 500n);
    assert.equal(balance(ed25519Address(carol.sender.publicKey)), 0n);
  });

  it('refuses wrapped validator-key ops and misbound or bad FALCON signatures, writing nothing', async () => {
    const delegateBody = encodeStakingTx({
      op: 'delegate',
      fee: 0n,
      amount: 10n,
      validator: v[0].address,
    });
    const flipSig = (body: Uint8Array): Uint8Array => {
      const decoded = decodeCaesarBody(body) as HybridTx;
      const pqSig = decoded.pqSig.slice();
      pqSig[pqSig.length - 1] = (pqSig[pqSig.length - 1] ?? 0) ^ 0x01;
      return encodeHybridTx({ ...decoded, pqSig });
    };
    /** The FALCON signature of the body for the next sequence, under this sequence's `seq`. */
    const sigOfNext = async (sequence: number): Promise<Uint8Array> => {
      const next = decodeCaesarBody(await wrappedBody(delegateBody, sequence + 1)) as HybridTx;
      const own = decodeCaesarBody(await wrappedBody(delegateBody, sequence)) as HybridTx;
      return tx(carol.sender, encodeHybridTx({ ...own, pqSig: next.pqSig }), {
        module: 'caesar',
        sequence,
      });
    };
    const wrappedBody = (body: Uint8Array, sequence: number) =>
      signHybridTx({
        chainId: CHAIN_ID,
        sender: carol.sender.publicKey,
        sequence,
        body,
        falcon: carol.falcon,
        backend: falcon,
      });
    const cases: [string, (sequence: number) => Promise<Uint8Array>, CaesarErrorCode][] = [
      [
        'a wrapped create-validator',
        (sequence) =>
          wrapped(
            encodeStakingTx({
              op: 'create-validator',
              fee: 0n,
              bond: 1_000n,
              pqKey: carol.falcon.publicKey,
              commission: 0,
              storageRoot: new Uint8Array(32),
            }),
            { sequence },
          ),
        CaesarErrorCode.HYBRID_VALIDATOR_OP,
      ],
      [
        'a wrapped unjail',
        (sequence) => wrapped(encodeStakingTx({ op: 'unjail', fee: 0n }), { sequence }),
        CaesarErrorCode.HYBRID_VALIDATOR_OP,
      ],
      [
        'a wrapped edit-validator',
        (sequence) =>
          wrapped(encodeStakingTx({ op: 'edit-validator', fee: 0n, commission: 0 }), {
            sequence,
          }),
        CaesarErrorCode.HYBRID_VALIDATOR_OP,
      ],
    ];
    // Wrapped validator-key ops do not decode: they use the Ed25519 key's sequence, refused.
    for (const [what, make, code] of cases) {
      const before = { balance: balance(carol.address), bonded: bondedOf(node) };
      const bytes = await make(carol.sender.sequence++);
      assert.equal(refusal(node.app.checkTx(bytes)), code, `${what}: admission`);
      const result = runBlock(node, [bytes]);
      assert.deepEqual(codes(result), [CAESAR_RESULT_CODES[code]], `${what}: execution`);
      onlySequences(result, what);
      assert.deepEqual(
        { balance: balance(carol.address), bonded: bondedOf(node) },
        before,
        `${what}: nothing moved`,
      );
    }
    // A FALCON half that does not verify: not admissible, a block holding it is invalid.
    const unproven: [string, (sequence: number) => Promise<Uint8Array>, CaesarErrorCode][] = [
      [
        'a delegate with a flipped FALCON signature bit',
        (sequence) => wrapped(delegateBody, { sequence, edit: flipSig }),
        CaesarErrorCode.HYBRID_BAD_SIGNATURE,
      ],
      [
        'a delegate signed for the next sequence',
        (sequence) => wrapped(delegateBody, { sequence, signedFor: sequence + 1 }),
        CaesarErrorCode.HYBRID_SEQUENCE_MISMATCH,
      ],
      [
        "a delegate carrying the next sequence's FALCON signature",
        sigOfNext,
        CaesarErrorCode.HYBRID_BAD_SIGNATURE,
      ],
    ];
    for (const [what, make, code] of unproven) {
      const bytes = await make(carol.sequence);
      const checked = node.app.checkTx(bytes);
      assert.equal(refusal(checked), TransactionErrorCode.BAD_ACCOUNT_PROOF, `${what}: admission`);
      const message = refusalMessage(checked);
      assert.ok(message.includes(code), `${what}: ${message}`);
      assertInvalidBlock(node, bytes, TransactionErrorCode.BAD_ACCOUNT_PROOF, what);
    }
    // And the same delegation, properly signed, is applied.
    const good = await wrapped(delegateBody);
    assert.deepEqual(codes(runBlock(node, [good])), [0]);
  });
});
