import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeCanonical } from '../../../src/codec/cbor.js';
import {
  CaRecordCache,
  CaStateReader,
  PENDING_KEY,
  batchKey,
  decodeBatch,
  decodeIssuance,
  encodeBatch,
  encodeIssuance,
  encodePending,
  encodeRateWindow,
  rateKey,
  requestKey,
  type BatchRecord,
} from '../../../src/trustchain/ca-module/state.js';
import { CaStateError } from '../../../src/trustchain/ca-module/errors.js';

const uint = fc.oneof(
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 60_000, max: 70_000 }),
  fc.constantFrom(2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
);
const batch: fc.Arbitrary<BatchRecord> = fc.record({
  time: uint,
  first: fc.option(uint),
  items: fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 300 }),
});

/** A state reader over one mutable map (hex key → value), as a module view reads. */
function memoryState(): {
  map: Map<string, Uint8Array>;
  get: (key: Uint8Array) => Uint8Array | null;
} {
  const map = new Map<string, Uint8Array>();
  return {
    map,
    get: (key) => {
      const value = map.get(Buffer.from(key).toString('hex'));
      return value === undefined ? null : value.slice();
    },
  };
}

describe('ca state records', () => {
  it('encodeBatch is encodeCanonical of the stored map, byte for byte', () => {
    fc.assert(
      fc.property(batch, (record) => {
        const expected = encodeCanonical({
          t: record.time,
          ...(record.first === null ? {} : { first: record.first }),
          items: record.items,
        });
        assert.deepEqual(encodeBatch(record), new Uint8Array(expected));
        assert.deepEqual(decodeBatch(expected), { ...record });
      }),
      { numRuns: 300 },
    );
  });

  it('the record cache answers what decoding the bytes read gives, whatever was written', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            // An issuance appended through the cache (what apply does).
            fc.record({
              kind: fc.constant('append' as const),
              height: fc.integer({ min: 1, max: 4 }),
            }),
            // The state changed under the cache (another block, a rollback, a corrupt value).
            fc.record({
              kind: fc.constant('overwrite' as const),
              height: fc.integer({ min: 1, max: 4 }),
              record: batch,
              corrupt: fc.boolean(),
            }),
            fc.record({
              kind: fc.constant('read' as const),
              height: fc.integer({ min: 1, max: 4 }),
            }),
          ),
          { maxLength: 60 },
        ),
        (steps) => {
          const cache = new CaRecordCache();
          const state = memoryState();
          const cached = new CaStateReader(state, cache);
          const plain = new CaStateReader(state);
          const put = (height: number, value: Uint8Array): void => {
            state.map.set(Buffer.from(batchKey(height)).toString('hex'), value.slice());
          };
          const read = (reader: CaStateReader, height: number): BatchRecord | null | string => {
            try {
              return reader.batch(height);
            } catch (error) {
              assert.ok(error instanceof CaStateError);
              return error.code;
            }
          };
          for (const step of steps) {
            if (step.kind === 'append') {
              const current = read(cached, step.height);
              const items = typeof current === 'object' && current !== null ? current.items : [];
              put(
                step.height,
                cache.encodeBatch(step.height, {
                  time: 1_000,
                  first: null,
                  items: [...items, new Uint8Array(randomBytes(32))],
                }),
              );
            } else if (step.kind === 'overwrite') {
              const bytes = encodeBatch(step.record);
              if (step.corrupt) bytes[bytes.length - 1] = 0xff;
              put(step.height, step.corrupt ? bytes.slice(0, -1) : bytes);
            }
            const answer = read(cached, step.height);
            assert.deepEqual(answer, read(plain, step.height));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('rate windows and the pending list: the cache answers what decoding gives', () => {
    const accounts = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            what: fc.constantFrom('rate-0', 'rate-1', 'pending'),
            through: fc.constantFrom('cache', 'raw', 'corrupt'),
            numbers: fc.array(uint, { minLength: 2, maxLength: 5 }),
          }),
          { maxLength: 40 },
        ),
        (steps) => {
          const cache = new CaRecordCache();
          const state = memoryState();
          const cached = new CaStateReader(state, cache);
          const plain = new CaStateReader(state);
          const answer = (read: () => unknown): unknown => {
            try {
              return read();
            } catch (error) {
              assert.ok(error instanceof CaStateError);
              return error.code;
            }
          };
          for (const { what, through, numbers } of steps) {
            const [start, count] = numbers as [number, number];
            const account = accounts[what === 'rate-1' ? 1 : 0] as Uint8Array;
            const key = what === 'pending' ? PENDING_KEY : rateKey(account);
            let bytes: Uint8Array;
            if (what === 'pending') {
              bytes = through === 'cache' ? cache.encodePending(numbers) : encodePending(numbers);
            } else {
              const window = { start, count };
              bytes =
                through === 'cache'
                  ? cache.encodeRateWindow(Buffer.from(account).toString('hex'), window)
                  : encodeRateWindow(window);
            }
            if (through === 'corrupt') bytes = Uint8Array.of(...bytes, 0);
            state.map.set(Buffer.from(key).toString('hex'), bytes);
            for (const reader of [accounts[0], accounts[1]]) {
              assert.deepEqual(
                answer(() => cached.rateWindow(reader as Uint8Array)),
                answer(() => plain.rateWindow(reader as Uint8Array)),
              );
            }
            assert.deepEqual(
              answer(() => cached.pending()),
              answer(() => plain.pending()),
            );
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a remembered issuance record is returned only for the same bytes', () => {
    const cache = new CaRecordCache();
    const state = memoryState();
    const reader = new CaStateReader(state, cache);
    const txHash = new Uint8Array(randomBytes(32));
    const key = Buffer.from(requestKey(txHash)).toString('hex');
    const record = (height: number) => ({
      account: new Uint8Array(randomBytes(32)),
      request: new Uint8Array(randomBytes(100)),
      height,
      lifetimeSeconds: 3600,
      serial: new Uint8Array(randomBytes(16)),
      renews: null,
      validatedAt: null,
    });
    for (const height of [1, 1, 2, 3]) {
      // Written as apply writes it (remembered), then as another block wrote it (not).
      for (const remembered of [true, false]) {
        const bytes = remembered
          ? cache.encodeIssuance(Buffer.from(txHash).toString('hex'), record(height))
          : encodeIssuance(record(height));
        state.map.set(key, bytes);
        assert.deepEqual(reader.issuance(txHash), decodeIssuance(bytes));
        assert.deepEqual(reader.issuance(txHash), decodeIssuance(bytes));
      }
    }
    state.map.set(key, Uint8Array.of(0xa0));
    assert.throws(() => reader.issuance(txHash), CaStateError);
  });
});
