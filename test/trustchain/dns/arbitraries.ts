import fc from 'fast-check';
import {
  formatIPv4,
  formatIPv6,
  knownTypeName,
  wireToName,
} from '../../../src/trustchain/dns/index.js';
import type { ResourceRecord, SvcParams } from '../../../src/trustchain/dns/index.js';

/** Names with arbitrary label bytes (escapes included), within the 255-byte limit. */
export const nameArb = fc
  .array(fc.uint8Array({ minLength: 1, maxLength: 12 }), { maxLength: 5 })
  .map((labels) => wireToName(Uint8Array.from([...labels.flatMap((l) => [l.length, ...l]), 0])));

export const hostArb = fc
  .array(fc.stringMatching(/^[a-zA-Z0-9_-]{1,10}$/), { minLength: 1, maxLength: 4 })
  .map((labels) => `${labels.join('.')}.`);

/** Plain objects (fast-check's default null prototype would fail deep equality). */
const rec = (<T>(
  shape: { [K in keyof T]: fc.Arbitrary<T[K]> },
  options: { requiredKeys?: never[] } = {},
) => fc.record(shape, { ...options, noNullPrototype: true })) as typeof fc.record;

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => formatIPv4(b));
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatIPv6(b));
const ascending = (arb: fc.Arbitrary<number>, min = 0) =>
  fc.uniqueArray(arb, { minLength: min, maxLength: 6 }).map((list) => list.sort((a, b) => a - b));

const svcParamsArb: fc.Arbitrary<SvcParams> = fc
  .record(
    {
      mandatory: ascending(fc.integer({ min: 1, max: 0xffff }), 1),
      alpn: fc.array(
        fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => String.fromCharCode(...b)),
        { minLength: 1, maxLength: 3 },
      ),
      noDefaultAlpn: fc.constant(true as const),
      port: u16,
      ipv4hint: fc.array(ipv4, { minLength: 1, maxLength: 3 }),
      ech: bytes(20),
      ipv6hint: fc.array(ipv6, { minLength: 1, maxLength: 2 }),
      keys: ascending(fc.integer({ min: 7, max: 0xffff }), 1).chain((keys) =>
        fc.tuple(...keys.map((key) => bytes(8).map((value) => ({ key, value })))),
      ),
    },
    { requiredKeys: [] },
  )
  .map((params) => ({ ...params }) as SvcParams);

const dataArbs = {
  A: rec({ address: ipv4 }),
  AAAA: rec({ address: ipv6 }),
  NS: rec({ host: nameArb }),
  CNAME: rec({ target: nameArb }),
  SOA: rec({
    mname: nameArb,
    rname: nameArb,
    serial: u32,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
  }),
  MX: rec({ preference: u16, exchange: nameArb }),
  TXT: rec({ strings: fc.array(bytes(255), { minLength: 1, maxLength: 4 }) }),
  SRV: rec({ priority: u16, weight: u16, port: u16, target: nameArb }),
  CAA: rec({ flags: u8, tag: fc.stringMatching(/^[A-Za-z0-9]{1,15}$/), value: bytes(40) }),
  TLSA: rec({ usage: u8, selector: u8, matchingType: u8, data: bytes(64) }),
  SVCB: rec({ priority: u16, target: nameArb, params: svcParamsArb }),
  HTTPS: rec({ priority: u16, target: nameArb, params: svcParamsArb }),
  DNSKEY: rec({ flags: u16, protocol: u8, algorithm: u8, publicKey: bytes(64) }),
  RRSIG: rec({
    typeCovered: u16,
    algorithm: u8,
    labels: u8,
    originalTtl: u32,
    expiration: u32,
    inception: u32,
    keyTag: u16,
    signerName: nameArb,
    signature: bytes(64),
  }),
  NSEC: rec({
    next: nameArb,
    types: fc.uniqueArray(u16, { maxLength: 12 }).map((t) => t.sort((a, b) => a - b)),
  }),
  DS: rec({ keyTag: u16, algorithm: u8, digestType: u8, digest: bytes(48) }),
};

/** A type code with no model and not OPT. */
const opaqueType = fc
  .integer({ min: 1, max: 0xffff })
  .filter((code) => code !== 41 && knownTypeName(code) === undefined);

export const recordArb: fc.Arbitrary<ResourceRecord> = fc.oneof(
  ...Object.entries(dataArbs).map(([type, data]) =>
    rec({
      name: nameArb,
      type: fc.constant(type),
      class: fc.constant(1),
      ttl: u32,
      data: data as fc.Arbitrary<unknown>,
    }),
  ),
  rec({
    name: nameArb,
    type: opaqueType.map((code) => `TYPE${code}`),
    class: u16,
    ttl: u32,
    data: rec({ rdata: bytes(40) }),
  }),
) as fc.Arbitrary<ResourceRecord>;
