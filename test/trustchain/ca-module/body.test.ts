import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CborErrorCode, decodeStrict, encodeCanonical } from '../../../src/codec/cbor.js';
import { MAX_BODY_BYTES } from '../../../src/consensus/application/envelope.js';
import {
  decodeCaBody,
  encodeCaBody,
  type CaRequestTx,
  type CaTx,
} from '../../../src/trustchain/ca-module/body.js';
import { MAX_DCV_ATTESTATIONS } from '../../../src/trustchain/ca-module/dcv.js';
import { CaModuleError, CaModuleErrorCode } from '../../../src/trustchain/ca-module/errors.js';
import { MAX_BATCH_CERTIFICATES } from '../../../src/trustchain/ca-module/state.js';

/** decodeCaBody's answer: the transaction, or the error code it refused with. */
function outcome(body: Uint8Array): CaTx | string {
  try {
    return decodeCaBody(body);
  } catch (error) {
    assert.ok(error instanceof CaModuleError, `not a CaModuleError: ${String(error)}`);
    return error.code;
  }
}

/** `{ op: "request", req }` with the byte string's head written as `head` (any length form). */
function requestBody(head: number[], payload: Uint8Array): Uint8Array {
  const prefix = encodeCanonical({ op: 'request', req: new Uint8Array(0) }).slice(0, -1);
  return Uint8Array.from([...prefix, ...head, ...payload]);
}

const payload = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 300 }),
  fc.integer({ min: 32 * 1024 - 2, max: 32 * 1024 + 2 }).map((n) => new Uint8Array(n).fill(7)),
);

describe('ca body decoding (the plain-request fast path agrees with the general decoder)', () => {
  it('a request body decodes to its bytes for 1 B–32 KiB and is refused outside', () => {
    fc.assert(
      fc.property(payload, (req) => {
        const body = encodeCanonical({ op: 'request', req });
        const result = outcome(body);
        if (req.length >= 1 && req.length <= 32 * 1024) {
          assert.deepEqual(result, { op: 'request', request: req });
          assert.deepEqual(encodeCaBody(result as CaTx), body);
        } else {
          assert.equal(result, 'CA_MALFORMED_BODY');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('refuses byte-string heads that are not the shortest form', () => {
    const small = new Uint8Array(10).fill(1);
    const medium = new Uint8Array(200).fill(2);
    for (const body of [
      requestBody([0x58, small.length], small),
      requestBody([0x59, 0, small.length], small),
      requestBody([0x59, 0, medium.length], medium),
      requestBody([0x5a, 0, 0, 0, medium.length], medium),
      requestBody([0x5f, 0x4a, ...small, 0xff], new Uint8Array(0)),
    ]) {
      assert.equal(outcome(body), 'CA_MALFORMED_BODY');
    }
  });

  it('a mutated body is refused or decodes to a transaction that encodes back to it', () => {
    const bodies = fc.oneof(
      payload.map((req) => encodeCanonical({ op: 'request', req })),
      fc
        .uint8Array({ minLength: 1, maxLength: 40 })
        .map((req) => encodeCanonical({ op: 'request', req, dcv: [req] })),
      fc
        .uint8Array({ minLength: 16, maxLength: 16 })
        .map((serial) => encodeCanonical({ op: 'renew', serial })),
    );
    fc.assert(
      fc.property(
        bodies,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.integer({ min: -3, max: 3 }),
        (original, flips, resize) => {
          const bytes = Uint8Array.from(original);
          for (const [at, value] of flips) bytes[at % bytes.length] = value;
          const body =
            resize >= 0
              ? Uint8Array.from([...bytes, ...new Uint8Array(resize)])
              : bytes.slice(0, Math.max(0, bytes.length + resize));
          const result = outcome(body);
          if (typeof result === 'string') {
            assert.equal(result, 'CA_MALFORMED_BODY');
            return;
          }
          assert.deepEqual(encodeCaBody(result), body);
          // And it is what the bytes say: the same map, read by the plain CBOR decoder.
          const map = decodeStrict(body) as Record<string, unknown>;
          assert.equal(map.op, result.op);
          if (result.op === 'request') assert.deepEqual(map.req, result.request);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe("ca body item budget (the schema's largest bodies, 267 data items)", () => {
  const budgetRefusal = (error: unknown): boolean =>
    error instanceof CaModuleError &&
    error.code === CaModuleErrorCode.MALFORMED_BODY &&
    error.detail.cbor === CborErrorCode.TOO_MANY_ITEMS;

  it('the largest bodies decode; one list item more is refused before it is built', () => {
    // publish: the map, 5 keys and values, 256 signatures = 267 items.
    const sig = new Uint8Array(72).fill(3);
    const publish = (count: number): CaTx => ({
      op: 'publish',
      height: 1,
      issuer: 'val-a',
      batch: new Uint8Array(1),
      signatures: new Array<Uint8Array>(count).fill(sig),
    });
    assert.deepEqual(outcome(encodeCaBody(publish(MAX_BATCH_CERTIFICATES))), publish(256));
    assert.throws(() => decodeCaBody(encodeCaBody(publish(257))), budgetRefusal);
    // request: the map, 3 keys and values, 256 attestations = 263 items.
    const dcv = (count: number) =>
      encodeCanonical({ op: 'request', req: new Uint8Array(1), dcv: new Array(count).fill(sig) });
    assert.equal((outcome(dcv(MAX_DCV_ATTESTATIONS)) as CaRequestTx).dcv?.length, 256);
    assert.equal(outcome(dcv(257)), 'CA_MALFORMED_BODY');
    assert.throws(() => decodeCaBody(dcv(261)), budgetRefusal);
  });

  it('a body of 32 KiB of empty maps is refused when the array head announcing them is read', () => {
    const count = MAX_BODY_BYTES - 3;
    const body = new Uint8Array(MAX_BODY_BYTES).fill(0xa0);
    body.set([0x99, count >> 8, count & 255]);
    assert.throws(() => decodeCaBody(body), budgetRefusal);
  });
});
