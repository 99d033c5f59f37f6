import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeCanonical } from '../../src/codec/cbor.js';
import {
  KV_RESULT_CODES,
  KvError,
  KvErrorCode,
  KvStateError,
  MAX_KV_KEY_BYTES,
  MAX_KV_VALUE_BYTES,
  decodeKvBody,
  decodeKvEntry,
  kvDelete,
  kvGetQuery,
  kvSet,
  kvStateKey,
  verifyKvGet,
} from '../../src/kv/index.js';
import { decodeStateProof, verifyStateProof } from '../../src/storage/index.js';
import { makeSender, openNode, tx, utf8 } from '../consensus/application/fixture.js';
import type { TestNode } from '../consensus/application/fixture.js';

const kvCode = (code: KvErrorCode) => (error: unknown) => {
  assert.ok(error instanceof KvError, `expected a KvError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return true;
};

describe('kv transaction bodies', () => {
  it('set and delete round-trip, strings taken as UTF-8', () => {
    assert.deepEqual(decodeKvBody(kvSet('name', 'välue')), {
      op: 'set',
      key: utf8('name'),
      value: utf8('välue'),
    });
    assert.deepEqual(decodeKvBody(kvSet(Uint8Array.of(0, 255), new Uint8Array(0))), {
      op: 'set',
      key: Uint8Array.of(0, 255),
      value: new Uint8Array(0),
    });
    assert.deepEqual(decodeKvBody(kvDelete('name')), { op: 'delete', key: utf8('name') });
    const largest = decodeKvBody(
      kvSet(new Uint8Array(MAX_KV_KEY_BYTES), new Uint8Array(MAX_KV_VALUE_BYTES)),
    );
    assert.equal(largest.key.length, MAX_KV_KEY_BYTES);
  });

  it('refuses oversize keys and values, empty keys and malformed bodies precisely', () => {
    const longKey = new Uint8Array(MAX_KV_KEY_BYTES + 1);
    const bigValue = new Uint8Array(MAX_KV_VALUE_BYTES + 1);
    assert.throws(() => kvSet(longKey, 'v'), kvCode(KvErrorCode.KEY_TOO_LONG));
    assert.throws(() => kvDelete(longKey), kvCode(KvErrorCode.KEY_TOO_LONG));
    assert.throws(() => kvSet('k', bigValue), kvCode(KvErrorCode.VALUE_TOO_LARGE));
    assert.throws(() => kvSet('', 'v'), kvCode(KvErrorCode.MALFORMED_BODY));
    const body = (value: unknown) => encodeCanonical(value);
    const cases: [string, Uint8Array, KvErrorCode][] = [
      ['long key', body({ op: 'set', key: longKey, value: utf8('v') }), KvErrorCode.KEY_TOO_LONG],
      [
        'big value',
        body({ op: 'set', key: utf8('k'), value: bigValue }),
        KvErrorCode.VALUE_TOO_LARGE,
      ],
      ['empty key', body({ op: 'delete', key: new Uint8Array(0) }), KvErrorCode.MALFORMED_BODY],
      ['text key', body({ op: 'delete', key: 'k' }), KvErrorCode.MALFORMED_BODY],
      ['missing value', body({ op: 'set', key: utf8('k') }), KvErrorCode.MALFORMED_BODY],
      [
        'extra field',
        body({ op: 'delete', key: utf8('k'), value: utf8('v') }),
        KvErrorCode.MALFORMED_BODY,
      ],
      [
        'unknown op',
        body({ op: 'put', key: utf8('k'), value: utf8('v') }),
        KvErrorCode.MALFORMED_BODY,
      ],
      ['array', body(['set', utf8('k'), utf8('v')]), KvErrorCode.MALFORMED_BODY],
      ['byte string', body(utf8('k')), KvErrorCode.MALFORMED_BODY],
      ['null', body(null), KvErrorCode.MALFORMED_BODY],
      ['not CBOR', utf8('{"op":"set"}'), KvErrorCode.MALFORMED_BODY],
      // Map keys out of canonical order ("key" before the shorter "op"), written by hand.
      [
        'non-canonical',
        Uint8Array.of(
          0xa2,
          0x63,
          ...utf8('key'),
          0x41,
          0x6b,
          0x62,
          0x6f,
          0x70,
          0x66,
          ...utf8('delete'),
        ),
        KvErrorCode.MALFORMED_BODY,
      ],
    ];
    for (const [name, input, code] of cases) {
      assert.throws(() => decodeKvBody(input), kvCode(code), name);
    }
  });

  it('garbage bodies only ever raise KvError (property)', () => {
    const check = (input: Uint8Array) => {
      try {
        decodeKvBody(input);
      } catch (error) {
        assert.ok(error instanceof KvError, String(error));
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), { numRuns: 300 });
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('op', 'key', 'value', '__proto__', 'x'),
          fc.oneof(
            fc.constantFrom('set', 'delete'),
            fc.uint8Array({ maxLength: 300 }),
            fc.integer(),
          ),
        ),
        (map) => check(encodeCanonical(map)),
      ),
      { numRuns: 300 },
    );
  });
});

describe('kv module in the application', () => {
  let node: TestNode;
  const alice = makeSender();
  const bob = makeSender();
  before(async () => {
    node = await openNode();
  });
  after(async () => {
    await node.close();
  });

  const get = (key: string, height?: number) => {
    const response = node.app.query(kvGetQuery(key, height));
    return { response, entry: verifyKvGet(utf8(key), response) };
  };

  it('set, get with a proof, overwrite by the owner, delete', () => {
    const first = node.executeAndCommit([tx(alice, kvSet('color', 'blue'))]);
    assert.deepEqual(
      first.txResults.map((r) => r.code),
      [0],
    );
    const { response, entry } = get('color');
    assert.equal(response.height, 1);
    assert.deepEqual(entry, { owner: alice.publicKey, value: utf8('blue') });
    assert.deepEqual(response.stateRoot, node.store.state.root());
    assert.ok(
      verifyStateProof(
        response.stateRoot,
        kvStateKey(utf8('color')),
        response.value,
        decodeStateProof(response.proof!),
      ),
      'the proof verifies against the returned root',
    );

    node.executeAndCommit([tx(alice, kvSet('color', 'green'))]);
    assert.deepEqual(get('color').entry?.value, utf8('green'));
    // The earlier height still answers with its own value and root.
    const old = get('color', 1);
    assert.deepEqual(old.entry?.value, utf8('blue'));
    assert.deepEqual(old.response.stateRoot, node.store.state.root(1));

    node.executeAndCommit([tx(alice, kvDelete('color'))]);
    const gone = get('color');
    assert.equal(gone.entry, null, 'absent, and the proof shows it');
    assert.equal(gone.response.value, null);
  });

  it('a key belongs to its creator: others are refused with NOT_OWNER until it is deleted', () => {
    node.executeAndCommit([tx(alice, kvSet('owned', 'alice'))]);
    const refused = node.executeAndCommit([
      tx(bob, kvSet('owned', 'bob')),
      tx(bob, kvDelete('owned')),
      tx(bob, kvDelete('never-set')),
    ]);
    assert.deepEqual(
      refused.txResults.map((r) => r.code),
      [
        KV_RESULT_CODES[KvErrorCode.NOT_OWNER],
        KV_RESULT_CODES[KvErrorCode.NOT_OWNER],
        KV_RESULT_CODES[KvErrorCode.NOT_FOUND],
      ],
    );
    assert.deepEqual(get('owned').entry, { owner: alice.publicKey, value: utf8('alice') });
    // The mempool refuses the same with the string code.
    const check = node.app.checkTx(tx(bob, kvSet('owned', 'bob'), { sequence: bob.sequence }));
    assert.equal(check.ok ? 'admitted' : check.code, KvErrorCode.NOT_OWNER);

    node.executeAndCommit([tx(alice, kvDelete('owned'))]);
    const retaken = node.executeAndCommit([tx(bob, kvSet('owned', 'bob now'))]);
    assert.deepEqual(
      retaken.txResults.map((r) => r.code),
      [0],
    );
    assert.deepEqual(get('owned').entry, { owner: bob.publicKey, value: utf8('bob now') });
  });

  it('within one block, the first writer of a new key owns it', () => {
    const result = node.executeAndCommit([
      tx(bob, kvSet('race', 'bob first')),
      tx(alice, kvSet('race', 'alice second')),
    ]);
    assert.deepEqual(
      result.txResults.map((r) => r.code),
      [0, KV_RESULT_CODES[KvErrorCode.NOT_OWNER]],
    );
    assert.deepEqual(get('race').entry?.value, utf8('bob first'));
  });

  it('a proof does not verify for another value or another key', () => {
    const { response } = get('race');
    const forged = encodeCanonical({ owner: alice.publicKey, value: utf8('forged') });
    assert.throws(() => verifyKvGet(utf8('race'), { ...response, value: forged }), KvStateError);
    assert.throws(() => verifyKvGet(utf8('other'), response), KvStateError);
    assert.throws(() => verifyKvGet(utf8('race'), { ...response, proof: undefined }), KvStateError);
    assert.throws(() => decodeKvEntry(utf8('not an entry')), KvStateError);
  });

  it('kv/get refuses bad keys', () => {
    assert.throws(() => kvGetQuery(''), kvCode(KvErrorCode.MALFORMED_BODY));
    assert.throws(
      () => node.app.query({ path: 'kv/get', data: new Uint8Array(MAX_KV_KEY_BYTES + 1) }),
      kvCode(KvErrorCode.INVALID_QUERY),
    );
  });
});
