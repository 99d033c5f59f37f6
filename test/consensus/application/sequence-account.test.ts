import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { decodeCanonical, encodeCanonical } from '../../../src/codec/cbor.js';
import type { TxCheckResult } from '../../../src/consensus/app.js';
import {
  ApplicationErrorCode,
  ModuleError,
  SEQUENCE_QUERY,
  TransactionErrorCode,
  accountSequenceKey,
  accountSequenceQuery,
  decodeSequence,
  decodeTransaction,
  sequenceKey,
} from '../../../src/consensus/application/index.js';
import type { Module } from '../../../src/consensus/application/index.js';
import { ConsensusError, ConsensusErrorCode } from '../../../src/consensus/errors.js';
import { Mempool } from '../../../src/consensus/mempool.js';
import { createKvModule } from '../../../src/kv/index.js';
import { decodeStateProof, verifyStateProof } from '../../../src/storage/index.js';
import { blockAt, hex, makeSender, openNode, tx } from './fixture.js';
import type { TestNode } from './fixture.js';

/**
 * `Module.sequenceAccount`: a transaction whose body proves an account of its module uses that
 * account's sequence numbers (`acct/<module>/<account hex>/seq`), which no other transaction
 * reaches, not even an envelope whose sender key has the account's bytes.
 */

/** The vault module's body: the account it claims (if any) and whether its proof holds. */
interface VaultTx {
  readonly account?: Uint8Array;
  readonly proof: 'good' | 'bad' | 'fault' | 'empty';
}

const vaultBody = (tx: VaultTx): Uint8Array => encodeCanonical({ ...tx });

function createVaultModule(): Module<VaultTx> & { calls: number } {
  const vault = {
    name: 'vault',
    calls: 0,
    decodeBody(body: Uint8Array): VaultTx {
      let decoded: unknown;
      try {
        decoded = decodeCanonical(body);
      } catch (error) {
        throw new ModuleError('VAULT_MALFORMED', 1, (error as Error).message);
      }
      const tx = decoded as Partial<VaultTx> | null;
      if (tx === null || typeof tx !== 'object' || typeof tx.proof !== 'string') {
        throw new ModuleError('VAULT_MALFORMED', 1, 'not {account?, proof}');
      }
      return tx as VaultTx;
    },
    claimedSequenceAccount(tx: VaultTx): Uint8Array | undefined {
      return tx.account;
    },
    sequenceAccount(_ctx: unknown, tx: VaultTx): Uint8Array | undefined {
      vault.calls++;
      if (tx.account === undefined) return undefined;
      if (tx.proof === 'bad') throw new ModuleError('VAULT_UNPROVEN', 2, 'the proof fails');
      if (tx.proof === 'fault') throw new Error('vault module bug');
      if (tx.proof === 'empty') return new Uint8Array(0);
      return tx.account;
    },
    check(): void {},
    apply(): void {},
    query(): undefined {
      return undefined;
    },
  };
  return vault;
}

const accepted = (result: TxCheckResult): { sender: string; nextSequence?: number } => {
  assert.ok(result.ok, result.ok ? '' : `${result.code}: ${result.message}`);
  return result;
};
const refusedWith = (result: TxCheckResult): string => (result.ok ? 'ok' : result.code);

describe('module sequence accounts', () => {
  const nodes: TestNode[] = [];
  const open = async () => {
    const vault = createVaultModule();
    const node = await openNode({ modules: [createKvModule(), vault] });
    nodes.push(node);
    node.executeAndCommit([]);
    return { node, vault };
  };
  after(async () => {
    for (const node of nodes) await node.close();
  });

  it("keeps an account's sequence apart from every sender key's, even one with the account's bytes", async () => {
    const { node } = await open();
    const owner = makeSender();
    const other = makeSender();
    // The account's bytes are `other`'s public key: `other`'s own envelopes must not reach it.
    const account = other.publicKey;
    const claim = (sequence: number, from = owner) =>
      tx(from, vaultBody({ account, proof: 'good' }), { module: 'vault', sequence });

    const first = node.app.checkTx(claim(0));
    assert.equal(accepted(first).sender, `vault:${hex(account)}`);
    assert.equal(accepted(first).nextSequence, 0);
    // The owner's own sequence 0 is still free, and `other`'s.
    assert.equal(
      accepted(
        node.app.checkTx(tx(owner, vaultBody({ proof: 'good' }), { module: 'vault', sequence: 0 })),
      ).sender,
      hex(owner.publicKey),
    );

    // `other`'s plain envelopes use `acct/<its key>/seq`, never the account's.
    const plain = [0, 1].map((sequence) =>
      tx(other, vaultBody({ proof: 'good' }), { module: 'vault', sequence }),
    );
    const result = node.executeAndCommit([...plain, claim(0)]);
    assert.deepEqual(
      result.txResults.map((r) => r.code),
      [0, 0, 0],
    );
    const stored = (key: Uint8Array) => decodeSequence(node.store.state.get(key));
    assert.equal(stored(sequenceKey(other.publicKey)), 2);
    assert.equal(stored(accountSequenceKey('vault', account)), 1);
    assert.equal(stored(sequenceKey(owner.publicKey)), 0);
    // Any sender may act for the account once it proves it (the module decides what a proof is).
    assert.deepEqual(
      node.executeAndCommit([claim(1, other)]).txResults.map((r) => r.code),
      [0],
    );
    assert.equal(stored(accountSequenceKey('vault', account)), 2);
    assert.equal(stored(sequenceKey(other.publicKey)), 2);

    // Used and too-far sequences are refused in the account's own numbering.
    assert.equal(refusedWith(node.app.checkTx(claim(1))), TransactionErrorCode.SEQUENCE_USED);
    assert.equal(
      refusedWith(node.app.checkTx(claim(2 + 65))),
      TransactionErrorCode.SEQUENCE_TOO_FAR,
    );
    assert.throws(
      () => node.executeAndCommit([claim(3)]),
      (error: unknown) =>
        error instanceof ConsensusError &&
        error.detail['reason'] === TransactionErrorCode.SEQUENCE_GAP,
    );
  });

  it('refuses a used sequence before any signature or account proof is checked', async () => {
    const { node } = await open();
    const alice = makeSender();
    const account = Uint8Array.of(7, 7, 7);
    const committed = tx(alice, vaultBody({ proof: 'good' }), { module: 'vault', sequence: 0 });
    const claimed = tx(alice, vaultBody({ account, proof: 'good' }), {
      module: 'vault',
      sequence: 0,
    });
    node.executeAndCommit([committed, claimed]);
    const forged = (bytes: Uint8Array): Uint8Array => {
      const copy = new Uint8Array(bytes); // a copy (Buffer#slice would be a view)
      copy[copy.length - 1]! ^= 1;
      return copy;
    };
    // The committed bytes again with a broken signature: the used sequence is what is refused,
    // so a node asked to check old transactions over and over does no signature work for them.
    assert.equal(
      refusedWith(node.app.checkTx(forged(committed))),
      TransactionErrorCode.SEQUENCE_USED,
    );
    assert.equal(
      refusedWith(node.app.checkTx(forged(claimed))),
      TransactionErrorCode.SEQUENCE_USED,
    );
    // An account claim at a used sequence, whose proof fails: refused for the sequence first.
    const unproven = tx(alice, vaultBody({ account, proof: 'bad' }), {
      module: 'vault',
      sequence: 0,
    });
    assert.equal(refusedWith(node.app.checkTx(unproven)), TransactionErrorCode.SEQUENCE_USED);
    // A free sequence is checked in full: the broken signature and the failing proof are found.
    const next = tx(alice, vaultBody({ proof: 'good' }), { module: 'vault', sequence: 1 });
    assert.equal(refusedWith(node.app.checkTx(forged(next))), TransactionErrorCode.BAD_SIGNATURE);
    const nextUnproven = tx(alice, vaultBody({ account, proof: 'bad' }), {
      module: 'vault',
      sequence: 1,
    });
    assert.equal(
      refusedWith(node.app.checkTx(nextUnproven)),
      TransactionErrorCode.BAD_ACCOUNT_PROOF,
    );
    assert.equal(refusedWith(node.app.checkTx(next)), 'ok');
  });

  it('queries the account sequence with a proof under its own key', async () => {
    const { node } = await open();
    const owner = makeSender();
    const account = Uint8Array.of(1, 2, 3);
    node.executeAndCommit(
      [0, 1, 2].map((sequence) =>
        tx(owner, vaultBody({ account, proof: 'good' }), { module: 'vault', sequence }),
      ),
    );
    const answer = node.app.query(accountSequenceQuery('vault', account));
    assert.equal(decodeSequence(answer.value), 3);
    assert.ok(answer.proof !== undefined);
    const proof = decodeStateProof(answer.proof);
    assert.ok(
      verifyStateProof(answer.stateRoot, accountSequenceKey('vault', account), answer.value, proof),
    );
    // Not a proof for the sender-form key of the same bytes.
    assert.ok(!verifyStateProof(answer.stateRoot, sequenceKey(account), answer.value, proof));
    assert.equal(node.app.query({ path: SEQUENCE_QUERY, data: owner.publicKey }).value, null);

    const code = (expected: string) => (error: unknown) =>
      (error as { code?: unknown }).code === expected;
    assert.throws(
      () => node.app.query(accountSequenceQuery('kv', account)),
      code(ApplicationErrorCode.UNKNOWN_QUERY),
      'kv has no sequence accounts',
    );
    assert.throws(
      () => node.app.query(accountSequenceQuery('nope', account)),
      code(ApplicationErrorCode.UNKNOWN_QUERY),
    );
    assert.throws(
      () => node.app.query(accountSequenceQuery('vault', new Uint8Array(0))),
      code(ApplicationErrorCode.INVALID_QUERY),
    );
    assert.throws(
      () => node.app.query(accountSequenceQuery('vault', new Uint8Array(65))),
      code(ApplicationErrorCode.INVALID_QUERY),
    );
  });

  it('an unproven account is inadmissible: refused at admission, an invalid block, left out of proposals', async () => {
    const { node } = await open();
    const owner = makeSender();
    const bad = tx(owner, vaultBody({ account: Uint8Array.of(9), proof: 'bad' }), {
      module: 'vault',
      sequence: 0,
    });
    const checked = node.app.checkTx(bad);
    assert.equal(refusedWith(checked), TransactionErrorCode.BAD_ACCOUNT_PROOF);
    assert.match(checked.ok ? '' : checked.message, /VAULT_UNPROVEN/);
    const height = node.nextHeight();
    assert.throws(
      () => node.executeAndCommit([bad]),
      (error: unknown) =>
        error instanceof ConsensusError &&
        error.code === ConsensusErrorCode.INVALID_BLOCK &&
        error.detail['reason'] === TransactionErrorCode.BAD_ACCOUNT_PROOF,
    );
    assert.equal(node.nextHeight(), height);
    const good = tx(owner, vaultBody({ proof: 'good' }), { module: 'vault', sequence: 0 });
    const proposal = node.app.prepareProposal(blockAt(height, []), [bad, good], 1 << 20);
    assert.deepEqual(proposal.transactions, [good]);
    // Nothing of the sender's was used: its sequence 0 is what the good one took.
    assert.equal(
      proposal.result.changes.map(({ key }) => new TextDecoder().decode(key)).join(),
      `acct/${hex(owner.publicKey)}/seq`,
    );
  });

  it('a body its module cannot decode uses the sender sequence; a bad account is a module fault', async () => {
    const { node } = await open();
    const owner = makeSender();
    const garbage = tx(owner, Uint8Array.of(0xff), { module: 'vault', sequence: 0 });
    assert.equal(refusedWith(node.app.checkTx(garbage)), 'VAULT_MALFORMED');
    assert.deepEqual(
      node.executeAndCommit([garbage]).txResults.map((r) => r.code),
      [1],
    );
    assert.equal(decodeSequence(node.store.state.get(sequenceKey(owner.publicKey))), 1);

    for (const proof of ['fault', 'empty'] as const) {
      const faulty = tx(owner, vaultBody({ account: Uint8Array.of(1), proof }), {
        module: 'vault',
        sequence: 1,
      });
      assert.equal(refusedWith(node.app.checkTx(faulty)), ApplicationErrorCode.INTERNAL, proof);
      assert.throws(
        () => node.executeAndCommit([faulty]),
        (error: unknown) => error instanceof Error && !(error instanceof ConsensusError),
        proof,
      );
    }
  });

  it('asks the module once per transaction bytes, and the mempool keeps accounts apart', async () => {
    const { node, vault } = await open();
    const owner = makeSender();
    const pool = new Mempool(node.app, { maxPerSender: 2 });
    const mine = Uint8Array.of(7);
    const claims = [0, 1].map((sequence) =>
      tx(owner, vaultBody({ account: mine, proof: 'good' }), { module: 'vault', sequence }),
    );
    const plain = [0, 1].map((sequence) =>
      tx(owner, vaultBody({ proof: 'good' }), { module: 'vault', sequence }),
    );
    // Two pending per sender: the key's two and the account's two all fit.
    for (const bytes of [...plain, ...claims]) assert.ok(pool.add(bytes).ok);
    const before = vault.calls;
    assert.ok(node.app.checkTx(claims[0]!).ok);
    const height = node.nextHeight();
    const proposal = node.app.prepareProposal(blockAt(height, []), pool.candidates(), 1 << 20);
    assert.equal(proposal.transactions.length, 4);
    assert.equal(vault.calls, before, 'the admitted transactions are remembered by their bytes');
    node.commit(proposal.result);
    pool.update(height, proposal.transactions);
    assert.equal(pool.size(), 0);
    assert.deepEqual(
      proposal.result.txResults.map((r) => hex(r.txHash)),
      proposal.transactions.map((t) => hex(decodeTransaction(t).txHash)),
    );
  });
});
