import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { ModuleState } from '../../../src/consensus/application/module.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { children, contentOf, readWhole, type Tlv } from '../../../src/crypto/der.js';
import { createDeterministicSigner } from '../../../src/trustchain/ca/certificate.js';
import { buildCrl } from '../../../src/trustchain/ca/crl.js';
import { sha256 } from '../../../src/crypto/hash.js';
import {
  CaModuleError,
  CaModuleErrorCode,
  caRevokeBody,
  createCaModule,
} from '../../../src/trustchain/ca-module/index.js';
import { CaStateError } from '../../../src/trustchain/ca-module/errors.js';
import {
  CaStateReader,
  REVOKED_PAGE_SERIALS,
  certificateKey,
  encodeCertificateRecord,
  encodeIssuance,
  encodeRevocation,
  encodeRevokedCount,
  encodeRevokedPage,
  requestKey,
  revocationKey,
  revokedCountKey,
  revokedPageKey,
  serialKey,
} from '../../../src/trustchain/ca-module/state.js';
import { BLOCK_TIME, CHAIN_ID } from '../ca/fixtures.js';
import { createCaFixture, type CaFixture } from './fixture.js';

/** Module state over a map that counts the bytes of every value read and written. */
function countingState(): ModuleState & { map: Map<string, Uint8Array>; bytes: number } {
  const map = new Map<string, Uint8Array>();
  const state = {
    map,
    bytes: 0,
    get(key: Uint8Array): Uint8Array | null {
      const value = map.get(toHex(key));
      if (value === undefined) return null;
      state.bytes += value.length;
      return value.slice();
    },
    set(key: Uint8Array, value: Uint8Array): void {
      state.bytes += value.length;
      map.set(toHex(key), value.slice());
    },
    delete(key: Uint8Array): void {
      map.delete(toHex(key));
    },
  };
  return state;
}

/** Writes the records of a published certificate of `issuer` requested by `account`. */
function seedPublished(state: ModuleState, issuer: string, account: Uint8Array): Uint8Array {
  const serial = new Uint8Array(randomBytes(16));
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01;
  const txHash = sha256(serial);
  state.set(
    requestKey(txHash),
    encodeIssuance({
      account,
      request: Uint8Array.of(1),
      height: 1,
      lifetimeSeconds: 86_400,
      serial,
      renews: null,
      validatedAt: null,
    }),
  );
  state.set(serialKey(serial), txHash);
  state.set(
    certificateKey(serial),
    encodeCertificateRecord({ der: Uint8Array.of(1), txHash, issuer, publishedAt: 2 }),
  );
  return serial;
}

describe('ca revoked lists (one page per 256 serials)', () => {
  let fixture: CaFixture;

  before(async () => {
    fixture = await createCaFixture();
  });

  it('a revocation costs the same at 20,000 revoked serials as at none; the CRL list has them all', () => {
    const module = createCaModule(fixture.config, { falcon: fixture.ca.falcon });
    const state = countingState();
    const account = fixture.operator.publicKey;
    // 18,000 revocations written as the layout stores them (count and full pages, the last one
    // part full), then 2,000 more through apply, crossing eight page boundaries.
    const seeded = 18_000;
    const applied = 2_000;
    const earlier = Array.from({ length: seeded }, () => seedPublished(state, 'val-a', account));
    for (let page = 0; page * REVOKED_PAGE_SERIALS < seeded; page++) {
      const from = page * REVOKED_PAGE_SERIALS;
      state.set(
        revokedPageKey('val-a', page),
        encodeRevokedPage(earlier.slice(from, from + REVOKED_PAGE_SERIALS)),
      );
    }
    state.set(revokedCountKey('val-a'), encodeRevokedCount(seeded));
    for (const serial of earlier) {
      state.set(
        revocationKey(serial),
        encodeRevocation({ reason: 1, height: 5, time: BLOCK_TIME }),
      );
    }
    const serials = Array.from({ length: applied }, () => seedPublished(state, 'val-a', account));
    const other = seedPublished(state, 'val-b', account);
    let height = 10;
    /** Applies the revocation of `serial`; returns the bytes it read and wrote. */
    const revoke = (serial: Uint8Array): number => {
      height += 1;
      const before = state.bytes;
      module.apply(
        {
          chainId: CHAIN_ID,
          height,
          time: BLOCK_TIME + height * 1000,
          txHash: sha256(serial),
          state,
        },
        module.decodeBody(caRevokeBody(serial, 4)),
        account,
      );
      return state.bytes - before;
    };

    // The first revocation of val-b: the cost of a revocation on a near-empty list.
    const empty = revoke(other);
    // A page of 256 serials is ~4.4 KiB, read and rewritten: the bound whatever the list's length
    // (rewriting the whole list, as before, cost ~34 bytes per revoked serial: 680 KB here).
    const bound = empty + 2 * (REVOKED_PAGE_SERIALS * 17 + 16) + 64;
    let largest = 0;
    for (const [index, serial] of serials.entries()) {
      const cost = revoke(serial);
      largest = Math.max(largest, cost);
      if (cost > bound) {
        assert.fail(`revocation ${index} read and wrote ${cost} bytes (near-empty list: ${empty})`);
      }
    }
    // One more on the long list, after a full page and mid-page: no more than on the empty one.
    const late = seedPublished(state, 'val-a', account);
    assert.ok(revoke(late) <= bound, `${largest} / ${empty}`);

    // Every state value stays small: no single value holds the list.
    for (const value of state.map.values()) assert.ok(value.length <= 8 * 1024);
    const reader = new CaStateReader(state);
    const total = seeded + applied;
    assert.equal(reader.revokedCount('val-a'), total + 1);
    assert.deepEqual(reader.revokedBy('val-a'), [...earlier, ...serials, late]);
    assert.deepEqual(reader.revokedBy('val-b'), [other]);
    assert.deepEqual(reader.revokedBy('val-c'), []);
    // Pages 0 … 78 (20,001 serials), each full but the last.
    const pages = Math.ceil((total + 1) / REVOKED_PAGE_SERIALS);
    assert.equal(
      reader.revokedPage('val-a', pages - 1, (total + 1) % REVOKED_PAGE_SERIALS).length,
      33,
    );
    assert.equal(state.get(revokedPageKey('val-a', pages)), null);
    assert.equal(reader.revocation(late)?.reason, 4);

    // val-a's CRL, built as the node builds it (src/node/ca-node.ts): every serial, once.
    const { keys, issuer } = fixture.ca.validators['val-a']!;
    const listed = reader.revokedBy('val-a');
    const seconds = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);
    const crl = buildCrl({
      issuer,
      signer: createDeterministicSigner(keys.ecdsa.privateKey),
      thisUpdate: seconds(BLOCK_TIME + 86_400_000),
      nextUpdate: seconds(BLOCK_TIME + 2 * 86_400_000),
      crlNumber: 1,
      revoked: listed.map((serial) => ({
        serial,
        revocationDate: seconds(reader.revocation(serial)!.time),
        reason: reader.revocation(serial)!.reason,
      })),
    });
    const tbs = children(crl, readWhole(crl))[0] as Tlv;
    const entries = children(crl, children(crl, tbs)[5] as Tlv);
    const inCrl = new Set(
      entries.map((entry) => toHex(contentOf(crl, children(crl, entry)[0] as Tlv))),
    );
    assert.equal(entries.length, total + 1);
    assert.deepEqual(inCrl, new Set([...earlier, ...serials, late].map(toHex)));

    // A page missing under the count is corrupt state, not a shorter list.
    state.delete(revokedPageKey('val-a', 3));
    assert.throws(() => reader.revokedBy('val-a'), CaStateError);
  });

  it('the revoked and revoked-page queries name the count and the pages; other names are refused', () => {
    const module = createCaModule(fixture.config, { falcon: fixture.ca.falcon });
    const view = countingState();
    const name = new TextEncoder().encode('val-a');
    assert.deepEqual(module.query('revoked', name, view)?.key, revokedCountKey('val-a'));
    const page = new Uint8Array(8 + name.length);
    new DataView(page.buffer).setBigUint64(0, 78n);
    page.set(name, 8);
    assert.deepEqual(module.query('revoked-page', page, view)?.key, revokedPageKey('val-a', 78));
    const refused = (path: string, data: Uint8Array): void =>
      assert.throws(
        () => module.query(path, data, view),
        (error: unknown) =>
          error instanceof CaModuleError && error.code === CaModuleErrorCode.INVALID_QUERY,
      );
    // A name with `/` would reach a page key through the count query.
    refused('revoked', new Uint8Array([...name, 0x2f, 0, 0, 0, 0, 0, 0, 0, 0]));
    refused('revoked', new Uint8Array(0));
    refused('revoked-page', new Uint8Array(8));
    refused('revoked-page', new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x61]));
  });
});
