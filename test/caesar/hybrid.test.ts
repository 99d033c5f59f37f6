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
  accountAddress,
  caesarBalanceQuery,
  createCaesarModule,
  caesarInitialState,
  decodeCaesarBody,
  ed25519Address,
  encodeCaesarBody,
  encodeHybridTx,
  encodeTransfer,
  formatAddress,
  hybridAddress,
  hybridSigningMessage,
  signHybridTransfer,
  verifyCaesarBalance,
} from '../../src/caesar/index.js';
import type { CaesarGenesis, HybridTx, TransferInput } from '../../src/caesar/index.js';
import { decodeTransaction } from '../../src/consensus/application/index.js';
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

const codes = (result: BlockExecutionResult) => result.txResults.map((r) => r.code);
const refusal = (result: TxCheckResult): string => (result.ok ? 'ok' : result.code);

/** A hybrid account: an Ed25519 sender and a FALCON-1024 key pair. */
interface HybridAccount {
  readonly sender: Sender;
  readonly falcon: FalconKeyPair;
  readonly address: Uint8Array;
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
    alice = { sender, falcon: keys, address: hybridAddress(sender.publicKey, keys.publicKey) };
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
    assert.deepEqual(body.transfer, { op: 'transfer', to: addressOf(bob), fee: 0n, amount: 5n });
    assert.equal(body.seq, 3);
    // A FALCON-1024 signature and key fit far below the 32 KiB body limit.
    assert.ok(envelope.size < 4 * 1024, `${envelope.size} bytes`);
    const message = hybridSigningMessage(CHAIN_ID, alice.sender.publicKey, body);
    assert.ok(falcon.verify(body.pqSig, message, body.pqKey));
    const elsewhere = hybridSigningMessage('other-chain', alice.sender.publicKey, body);
    assert.ok(!falcon.verify(body.pqSig, elsewhere, body.pqKey));
  });

  it('a hybrid transfer is admitted and applied, debiting the hybrid address only', async () => {
    const sequence = alice.sender.sequence++;
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
    const cases: [string, (sequence: number) => Promise<Uint8Array>, CaesarErrorCode][] = [
      [
        'no FALCON signature',
        (s) => hybridTx(alice, { to, amount: 1n }, s, withoutSig),
        CaesarErrorCode.HYBRID_SIGNATURE_MISSING,
      ],
      [
        'a flipped FALCON signature bit',
        (s) => hybridTx(alice, { to, amount: 1n }, s, flipSig),
        CaesarErrorCode.HYBRID_BAD_SIGNATURE,
      ],
      [
        "another FALCON key than the signer's",
        (s) => hybridTx(alice, { to, amount: 1n }, s, foreignKey),
        CaesarErrorCode.HYBRID_BAD_SIGNATURE,
      ],
      [
        'a FALCON key of the wrong size',
        (s) => hybridTx(alice, { to, amount: 1n }, s, shortKey),
        CaesarErrorCode.HYBRID_INVALID_KEY,
      ],
      [
        "a seq that is not the envelope's",
        (s) => hybridTx(alice, { to, amount: 1n }, s, otherSeq),
        CaesarErrorCode.HYBRID_SEQUENCE_MISMATCH,
      ],
      [
        // Whoever holds the Ed25519 key and a FALCON key of its own controls another account.
        'the Ed25519 key with a FALCON key of its own',
        (s) => hybridTx({ ...alice, falcon: mallory }, { to, amount: 1n }, s),
        CaesarErrorCode.INSUFFICIENT_FUNDS,
      ],
    ];
    for (const [what, make, code] of cases) {
      const before = balanceOf(alice.address);
      const bytes = await make(alice.sender.sequence++);
      assert.equal(refusal(node.app.checkTx(bytes)), code, `${what}: admission`);
      // Asked again: the remembered admission of these exact bytes gives the same answer.
      assert.equal(refusal(node.app.checkTx(bytes)), code, `${what}: admission again`);
      assert.deepEqual(
        codes(node.executeAndCommit([bytes])),
        [CAESAR_RESULT_CODES[code]],
        `${what}: execution`,
      );
      assert.equal(balanceOf(alice.address), before, `${what}: nothing moved`);
    }
  });

  it('a committed hybrid transfer cannot be replayed under a new sequence', async () => {
    const sequence = alice.sender.sequence++;
    const original = await hybridTx(alice, { to: addressOf(bob), amount: 7n }, sequence);
    assert.deepEqual(codes(node.executeAndCommit([original])), [0]);
    const replay = tx(alice.sender, decodeTransaction(original).body, { module: 'caesar' });
    assert.equal(refusal(node.app.checkTx(replay)), CaesarErrorCode.HYBRID_SEQUENCE_MISMATCH);
    assert.deepEqual(codes(node.executeAndCommit([replay])), [
      CAESAR_RESULT_CODES[CaesarErrorCode.HYBRID_SEQUENCE_MISMATCH],
    ]);
  });

  it('admission remembers bytes, not transactions: a valid one does not vouch for a tampered copy', async () => {
    const sequence = alice.sender.sequence;
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
    assert.equal(refusal(node.app.checkTx(tampered)), CaesarErrorCode.HYBRID_BAD_SIGNATURE);
    assert.equal(refusal(node.app.checkTx(good)), 'ok');
    assert.equal(refusal(node.app.checkTx(tampered)), CaesarErrorCode.HYBRID_BAD_SIGNATURE);
    assert.equal(refusal(node.app.checkTx(good)), 'ok');
    assert.deepEqual(codes(node.executeAndCommit([tampered])), [
      CAESAR_RESULT_CODES[CaesarErrorCode.HYBRID_BAD_SIGNATURE],
    ]);
    alice.sender.sequence++;
  });

  it('refuses a hybrid body that wraps anything but a transfer, or is malformed', () => {
    const decoded = (body: Uint8Array) => () => decodeCaesarBody(body);
    const refusedWith = (code: CaesarErrorCode) => (error: unknown) =>
      error instanceof CaesarError && error.code === code;
    const base = {
      op: textItem(HYBRID_OP),
      seq: uintItem(0),
      pqKey: bytesItem(mallory.publicKey),
      pqSig: bytesItem(concatBytes(Uint8Array.of(0x3a), new Uint8Array(600))),
    };
    const delegate = encodeCaesarBody({
      op: 'delegate',
      fee: 0n,
      amount: 1n,
      validator: new Uint8Array(20),
    });
    const inner = bytesItem(encodeTransfer({ to: addressOf(bob), amount: 1n }));
    assert.throws(
      decoded(mapItem({ ...base, tx: bytesItem(delegate) })),
      refusedWith(CaesarErrorCode.HYBRID_UNSUPPORTED_OP),
    );
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
