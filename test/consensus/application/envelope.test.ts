import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCanonical, encodeCanonical } from '../../../src/codec/cbor.js';
import {
  MAX_BODY_BYTES,
  MAX_TRANSACTION_BYTES,
  TransactionError,
  TransactionErrorCode,
  VerificationCache,
  buildTransaction,
  decodeTransaction,
  stampOf,
  txSender,
  verifyTransaction,
} from '../../../src/consensus/application/index.js';
import type { Envelope } from '../../../src/consensus/application/index.js';
import { stampWork, verifyStamp } from '../../../src/consensus/proof/hashcash.js';
import { CHAIN_ID, DIFFICULTY, hex, makeSender, utf8 } from './fixture.js';

const sender = makeSender();
const other = makeSender();

function build(overrides: Partial<Parameters<typeof buildTransaction>[0]> = {}) {
  return buildTransaction({
    chainId: CHAIN_ID,
    privateKey: sender.privateKey,
    sequence: 7,
    module: 'kv',
    body: utf8('a module body'),
    stampDifficulty: DIFFICULTY,
    ...overrides,
  });
}

const rejectsWith = (code: TransactionErrorCode) => (error: unknown) => {
  assert.ok(error instanceof TransactionError, `expected a TransactionError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return true;
};

const verifyOptions = { chainId: CHAIN_ID, stampDifficulty: DIFFICULTY };

/** The decoded fields as a plain array, to re-encode with changes. */
function fields(bytes: Uint8Array): unknown[] {
  return decodeCanonical(bytes) as unknown[];
}

function withField(bytes: Uint8Array, index: number, value: unknown): Uint8Array {
  const list = fields(bytes);
  list[index] = value;
  return encodeCanonical(list);
}

/** The transaction with its body's length written in a longer head than needed. */
function longBodyHead(bytes: Uint8Array): Uint8Array {
  const body = utf8('a module body');
  const short = Uint8Array.from([0x40 + body.length, ...body]);
  const at = Buffer.from(bytes).indexOf(Buffer.from(short));
  assert.ok(at > 0, 'the body is in the transaction');
  return Uint8Array.from([...bytes.subarray(0, at), 0x58, body.length, ...bytes.subarray(at + 1)]);
}

/** The transaction with a one-byte chain id that is not UTF-8 (0xff). */
function invalidUtf8ChainId(bytes: Uint8Array): Uint8Array {
  const rest = encodeCanonical(fields(bytes).slice(2)).subarray(1);
  return Uint8Array.from([0x88, 0x01, 0x61, 0xff, ...rest]);
}

describe('transaction envelope', () => {
  it('round-trips: decode gives the fields, the txHash, the stamp and the sender', () => {
    const body = utf8('a module body');
    const built = build({ body });
    const envelope = decodeTransaction(built.bytes);
    assert.equal(envelope.version, 1);
    assert.equal(envelope.chainId, CHAIN_ID);
    assert.deepEqual(envelope.sender, sender.publicKey);
    assert.equal(envelope.sequence, 7);
    assert.equal(envelope.module, 'kv');
    assert.deepEqual(envelope.body, body);
    assert.equal(envelope.signature.length, 64);
    assert.equal(envelope.size, built.bytes.length);
    assert.deepEqual(envelope.txHash, built.txHash);
    assert.ok(verifyStamp(envelope.txHash, envelope.nonce, DIFFICULTY), 'stamp has the work');
    assert.equal(txSender(envelope), hex(sender.publicKey));
    assert.deepEqual(stampOf(built.bytes), { txHash: built.txHash, nonce: envelope.nonce });
    verifyTransaction(envelope, verifyOptions);
  });

  it('txHash covers every field except the stamp and the signature', () => {
    const base = build();
    const variants = [
      build({ chainId: 'other-chain' }),
      build({ privateKey: other.privateKey }),
      build({ sequence: 8 }),
      build({ module: 'kv2' }),
      build({ body: utf8('another body') }),
    ];
    for (const variant of variants) assert.notDeepEqual(variant.txHash, base.txHash);
    // Another stamp for the same transaction: same txHash, other bytes.
    const restamped = build({ startNonce: decodeTransaction(base.bytes).nonce + 1 });
    assert.deepEqual(restamped.txHash, base.txHash);
    assert.notDeepEqual(restamped.bytes, base.bytes);
    verifyTransaction(decodeTransaction(restamped.bytes), verifyOptions);
  });

  it('txHash is the tagged hash of the canonical unsigned encoding (property)', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ maxLength: 300 }),
        fc.nat({ max: 2 ** 40 }),
        (sequence, body, startNonce) => {
          const built = build({ sequence, body, startNonce, stampDifficulty: 0 });
          const envelope = decodeTransaction(built.bytes);
          assert.equal(envelope.sequence, sequence);
          assert.equal(envelope.nonce, startNonce);
          assert.deepEqual(envelope.body, body);
          // A hand-made copy is re-encoded from its fields and must agree.
          verifyTransaction({ ...envelope }, { chainId: CHAIN_ID, stampDifficulty: 0 });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('refuses a bad signature, another sender signature and a tampered body', () => {
    const built = build();
    const envelope = decodeTransaction(built.bytes);
    const signature = envelope.signature.slice();
    signature[10] = (signature[10] as number) ^ 1;
    const badSig = decodeTransaction(withField(built.bytes, 7, signature));
    assert.throws(
      () => verifyTransaction(badSig, verifyOptions),
      rejectsWith(TransactionErrorCode.BAD_SIGNATURE),
    );

    // Signed by `sender` but claiming `other` as the sender.
    const impostor = decodeTransaction(withField(built.bytes, 2, other.publicKey));
    assert.throws(
      () => verifyTransaction(impostor, { chainId: CHAIN_ID, stampDifficulty: 0 }),
      rejectsWith(TransactionErrorCode.BAD_SIGNATURE),
    );

    // Tampered body: the txHash changes, so the stamp and the signature no longer fit. With
    // difficulty 0 the stamp passes and the signature is what catches it.
    const tampered = decodeTransaction(withField(built.bytes, 5, utf8('a module bodY')));
    assert.notDeepEqual(tampered.txHash, envelope.txHash);
    assert.throws(
      () => verifyTransaction(tampered, { chainId: CHAIN_ID, stampDifficulty: 0 }),
      rejectsWith(TransactionErrorCode.BAD_SIGNATURE),
    );
  });

  it('refuses another chain id', () => {
    const envelope = decodeTransaction(build({ chainId: 'another-chain' }).bytes);
    assert.throws(
      () => verifyTransaction(envelope, verifyOptions),
      rejectsWith(TransactionErrorCode.WRONG_CHAIN),
    );
  });

  it('refuses a stamp below the difficulty', () => {
    const built = build({ stampDifficulty: 0 });
    const envelope = decodeTransaction(built.bytes);
    const work = stampWork(envelope.txHash, envelope.nonce);
    assert.throws(
      () => verifyTransaction(envelope, { chainId: CHAIN_ID, stampDifficulty: work + 1 }),
      rejectsWith(TransactionErrorCode.INSUFFICIENT_STAMP),
    );
    verifyTransaction(envelope, { chainId: CHAIN_ID, stampDifficulty: work });
    // A stamp taken from another transaction does not carry over (barring a 2^-12 chance, so
    // the donor is chosen among a few until its nonce is no stamp for the target).
    const target = build({ stampDifficulty: 12 });
    const targetHash = target.txHash;
    let donorNonce = -1;
    for (let sequence = 100; donorNonce < 0; sequence++) {
      const donor = decodeTransaction(build({ sequence, stampDifficulty: 12 }).bytes);
      if (stampWork(targetHash, donor.nonce) < 12) donorNonce = donor.nonce;
    }
    const moved = decodeTransaction(withField(target.bytes, 6, donorNonce));
    assert.throws(
      () => verifyTransaction(moved, { chainId: CHAIN_ID, stampDifficulty: 12 }),
      rejectsWith(TransactionErrorCode.INSUFFICIENT_STAMP),
    );
  });

  it('refuses oversize bodies and transactions', () => {
    assert.throws(
      () => build({ body: new Uint8Array(MAX_BODY_BYTES + 1) }),
      rejectsWith(TransactionErrorCode.TOO_LARGE),
    );
    const largest = build({ body: new Uint8Array(MAX_BODY_BYTES), stampDifficulty: 0 });
    assert.ok(largest.bytes.length <= MAX_TRANSACTION_BYTES, 'largest body fits');
    decodeTransaction(largest.bytes);
    const oversizeBody = withField(largest.bytes, 5, new Uint8Array(MAX_BODY_BYTES + 1));
    assert.throws(
      () => decodeTransaction(oversizeBody),
      rejectsWith(TransactionErrorCode.TOO_LARGE),
    );
    assert.throws(
      () => decodeTransaction(new Uint8Array(MAX_TRANSACTION_BYTES + 1)),
      rejectsWith(TransactionErrorCode.TOO_LARGE),
    );
  });

  it('refuses malformed, non-canonical and ill-typed encodings with precise codes', () => {
    const bytes = build().bytes;
    const cases: [string, Uint8Array, TransactionErrorCode][] = [
      ['empty', new Uint8Array(0), TransactionErrorCode.MALFORMED],
      ['truncated', bytes.subarray(0, bytes.length - 1), TransactionErrorCode.MALFORMED],
      ['trailing byte', Uint8Array.from([...bytes, 0]), TransactionErrorCode.MALFORMED],
      ['not an array', encodeCanonical({ version: 1 }), TransactionErrorCode.MALFORMED],
      // 0x18 0x01 is 1 in a non-shortest form.
      [
        'non-shortest integer',
        Uint8Array.from([0x88, 0x18, 0x01, ...bytes.subarray(2)]),
        TransactionErrorCode.NOT_CANONICAL,
      ],
      ['non-shortest length', longBodyHead(bytes), TransactionErrorCode.NOT_CANONICAL],
      ['map', encodeCanonical({ a: 1 }), TransactionErrorCode.MALFORMED],
      ['text version', withField(bytes, 0, '1'), TransactionErrorCode.UNSUPPORTED_VERSION],
      ['empty array', encodeCanonical([]), TransactionErrorCode.MALFORMED],
      ['invalid UTF-8 chain id', invalidUtf8ChainId(bytes), TransactionErrorCode.MALFORMED],
      ['version 2', withField(bytes, 0, 2), TransactionErrorCode.UNSUPPORTED_VERSION],
      ['7 fields', encodeCanonical(fields(bytes).slice(0, 7)), TransactionErrorCode.MALFORMED],
      ['9 fields', encodeCanonical([...fields(bytes), 0]), TransactionErrorCode.MALFORMED],
      ['empty chain id', withField(bytes, 1, ''), TransactionErrorCode.INVALID_FIELD],
      ['long chain id', withField(bytes, 1, 'c'.repeat(65)), TransactionErrorCode.INVALID_FIELD],
      [
        '31-byte sender',
        withField(bytes, 2, new Uint8Array(31)),
        TransactionErrorCode.INVALID_FIELD,
      ],
      ['text sender', withField(bytes, 2, 'abc'), TransactionErrorCode.INVALID_FIELD],
      ['negative sequence', withField(bytes, 3, -1), TransactionErrorCode.INVALID_FIELD],
      ['sequence ≥ 2^53', withField(bytes, 3, 2n ** 60n), TransactionErrorCode.INVALID_FIELD],
      ['float sequence', withField(bytes, 3, 1.5), TransactionErrorCode.INVALID_FIELD],
      ['upper-case module', withField(bytes, 4, 'KV'), TransactionErrorCode.INVALID_FIELD],
      ['module with slash', withField(bytes, 4, 'kv/x'), TransactionErrorCode.INVALID_FIELD],
      ['text body', withField(bytes, 5, 'body'), TransactionErrorCode.INVALID_FIELD],
      ['negative nonce', withField(bytes, 6, -5), TransactionErrorCode.INVALID_FIELD],
      [
        '63-byte signature',
        withField(bytes, 7, new Uint8Array(63)),
        TransactionErrorCode.INVALID_FIELD,
      ],
    ];
    for (const [name, input, code] of cases) {
      assert.throws(() => decodeTransaction(input), rejectsWith(code), name);
      assert.equal(stampOf(input), undefined, name);
    }
    assert.throws(
      () => decodeTransaction('not bytes' as unknown as Uint8Array),
      rejectsWith(TransactionErrorCode.MALFORMED),
    );
  });

  it('a hand-built envelope whose txHash does not match its fields is refused', () => {
    const envelope = decodeTransaction(build().bytes);
    const forged: Envelope = { ...envelope, txHash: new Uint8Array(32) };
    assert.throws(
      () => verifyTransaction(forged, verifyOptions),
      rejectsWith(TransactionErrorCode.INVALID_FIELD),
    );
  });

  it('garbage never throws anything but TransactionError (property)', () => {
    const valid = build().bytes;
    const check = (input: Uint8Array) => {
      try {
        const envelope = decodeTransaction(input);
        try {
          verifyTransaction(envelope, verifyOptions);
        } catch (error) {
          assert.ok(error instanceof TransactionError, String(error));
        }
      } catch (error) {
        assert.ok(error instanceof TransactionError, String(error));
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), check), { numRuns: 400 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (flips) => {
          const mutated = valid.slice();
          for (const [at, mask] of flips) mutated[at] = (mutated[at] as number) ^ mask;
          check(mutated);
        },
      ),
      { numRuns: 400 },
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.integer(), fc.string(), fc.uint8Array({ maxLength: 70 }), fc.constant(null)),
          { maxLength: 10 },
        ),
        (list) => {
          check(encodeCanonical(list));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the verification cache skips re-verifying only the exact signature it verified', () => {
    const cache = new VerificationCache();
    const built = build();
    const envelope = decodeTransaction(built.bytes);
    verifyTransaction(envelope, { ...verifyOptions, cache });
    assert.deepEqual(cache.sizes, { verified: 1 });
    assert.ok(cache.wasVerified(envelope.txHash, envelope.signature), 'remembered');
    verifyTransaction(decodeTransaction(built.bytes), { ...verifyOptions, cache });
    // Same txHash, another signature: not in the cache, and wrong.
    const signature = envelope.signature.slice();
    signature[0] = (signature[0] as number) ^ 0x80;
    const swapped = decodeTransaction(withField(built.bytes, 7, signature));
    assert.deepEqual(swapped.txHash, envelope.txHash);
    assert.throws(
      () => verifyTransaction(swapped, { ...verifyOptions, cache }),
      rejectsWith(TransactionErrorCode.BAD_SIGNATURE),
    );
    cache.forget(envelope.txHash);
    assert.equal(cache.wasVerified(envelope.txHash, envelope.signature), false);
    const bounded = new VerificationCache({ maxVerified: 1 });
    verifyTransaction(envelope, { ...verifyOptions, cache: bounded });
    verifyTransaction(decodeTransaction(build({ privateKey: other.privateKey }).bytes), {
      ...verifyOptions,
      cache: bounded,
    });
    assert.deepEqual(bounded.sizes, { verified: 1 });
    assert.equal(bounded.wasVerified(envelope.txHash, envelope.signature), false);
  });
});
