import { z } from 'zod';
import { decodeCanonical, encodeCanonical } from '../../codec/cbor.js';
import { bytes, parseInput } from '../../codec/schema.js';
import type { ModuleStateReader } from '../../consensus/application/module.js';
import { BoundedMap } from '../../codec/bounded-map.js';
import { encodeFlatCanonical } from '../../codec/flat-canonical.js';
import { bytesEqual, concatBytes, toHex } from '../../crypto/bytes.js';
import { CaStateError } from './errors.js';
import { TREE_HEAD_KEY, decodeTreeHead, type ConsensusTreeHead } from './tree-head.js';

/**
 * The module's state, under the router's `ca/` prefix (docs/ca.md, "The ca module"):
 *
 *   ca/req/<32-byte txHash>    an issuance (request or renewal): account, request, height, lifetime, serial
 *   ca/sn/<16-byte serial>     the txHash of the issuance with that serial
 *   ca/batch/<u64 height>      the issuances of that block, in block order, until published
 *   ca/pending                 heights whose batches wait for publication, ascending
 *   ca/cert/<serial>           a published certificate (DER), its issuance txHash, issuer, height
 *   ca/pub/<u64 height>        the serials published by the block at that height, and its time
 *   ca/rev/<serial>            a revocation: reason, height, time
 *   ca/revoked/<issuer name>   how many of that intermediate's certificates are revoked: {n}
 *   ca/revoked/<issuer name>/<u64 p>
 *                              that intermediate's revoked serials p·K … p·K+K-1 (in revocation
 *                              order, K = REVOKED_PAGE_SERIALS): the index its CRL is built from
 *   ca/rate/<32-byte account>  the account's fixed issuance window (rate-limit.ts)
 *   ca/rate-window             start (seconds) of the issuance window holding the latest block's
 *                              time, rewritten when a block opens a new one: what admission
 *                              checks the windows against (module.ts `checkRateLimit`)
 *   ca/powers                  the validator set that committed the latest block but one, with
 *                              its voting powers (voting-power.ts)
 *   ca/gen/<serial>            a genesis bootstrap certificate's owner account (genesis.ts)
 *   ca/ct/head                 the transparency log's size and compact range (tree-head.ts)
 *   ca/key-compromised/<hash>, ca/key-certs/<hash>
 *                              a key marked by a keyCompromise revocation, and a key's unexpired
 *                              certificates (compromised-keys.ts)
 *
 * Values are deterministic CBOR maps with short keys.
 */

export const CA_MODULE_NAME = 'ca';

/**
 * Serials per page of an issuer's revoked list (`ca/revoked/<issuer>/<page>`): a revocation
 * rewrites only the last page (≤ ~4.4 KiB) and the count, whatever the list's length, and a CRL
 * reads the pages in order. Part of the state layout, so a consensus rule.
 */
export const REVOKED_PAGE_SERIALS = 256;

/** Issuance transactions per block: one publication carries all their signatures in 32 KiB. */
export const MAX_BATCH_CERTIFICATES = 256;
/** Blocks whose certificates may wait for publication at once. */
export const MAX_PENDING_BATCHES = 64;

const encoder = new TextEncoder();
const REQ = encoder.encode('req/');
const SN = encoder.encode('sn/');
const BATCH = encoder.encode('batch/');
const CERT = encoder.encode('cert/');
const PUB = encoder.encode('pub/');
const REV = encoder.encode('rev/');
const RATE = encoder.encode('rate/');
const REVOKED = encoder.encode('revoked/');
const GENESIS = encoder.encode('gen/');
const SLASH = encoder.encode('/');
export const PENDING_KEY = encoder.encode('pending');
export const RATE_WINDOW_KEY = encoder.encode('rate-window');
const MODULE_PREFIX = encoder.encode(`${CA_MODULE_NAME}/`);

export function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

export const requestKey = (txHash: Uint8Array): Uint8Array => concatBytes(REQ, txHash);
export const serialKey = (serial: Uint8Array): Uint8Array => concatBytes(SN, serial);
export const batchKey = (height: number): Uint8Array => concatBytes(BATCH, u64(height));
export const certificateKey = (serial: Uint8Array): Uint8Array => concatBytes(CERT, serial);
export const publishedKey = (height: number): Uint8Array => concatBytes(PUB, u64(height));
export const revocationKey = (serial: Uint8Array): Uint8Array => concatBytes(REV, serial);
export const rateKey = (account: Uint8Array): Uint8Array => concatBytes(RATE, account);
/** `revoked/<issuer>`: the issuer's revoked count (validator names never contain `/`). */
export const revokedCountKey = (issuer: string): Uint8Array =>
  concatBytes(REVOKED, encoder.encode(issuer));
/** `revoked/<issuer>/<u64 page>`: a page of the issuer's revoked serials. */
export const revokedPageKey = (issuer: string, page: number): Uint8Array =>
  concatBytes(REVOKED, encoder.encode(issuer), SLASH, u64(page));
export const genesisCertificateKey = (serial: Uint8Array): Uint8Array =>
  concatBytes(GENESIS, serial);

/** The full state key (with the router's `ca/` prefix) of a module-relative key. */
export function caStateKey(key: Uint8Array): Uint8Array {
  return concatBytes(MODULE_PREFIX, key);
}

export interface IssuanceRecord {
  /**
   * The requesting account (envelope sender); for a renewal, the renewed certificate's (for a
   * genesis bootstrap certificate, its genesis entry's `account`), whoever sent it.
   */
  readonly account: Uint8Array;
  /** `encodeCertificateRequest` bytes (a genesis certificate's renewal: the one it carried). */
  readonly request: Uint8Array;
  /** Height of the block that committed the issuance. */
  readonly height: number;
  readonly lifetimeSeconds: number;
  readonly serial: Uint8Array;
  /** For a renewal: the serial of the certificate renewed (issued or genesis). */
  readonly renews: Uint8Array | null;
  /**
   * Block time (ms) of the request this issuance descends from: its own block for a `request`,
   * inherited through renewals (the renewed certificate's notBefore where a record predates
   * this field, or for a genesis certificate). A renewal may reuse the names' validation only
   * up to `DCV_REUSE_MAX_MS` after it. Null only in records written before the field existed.
   */
  readonly validatedAt: number | null;
}

export interface BatchRecord {
  /** Time of the block that committed the issuances (ms): every certificate's notBefore. */
  readonly time: number;
  /** Index (in issuer order) of the first issuer whose turn it is; set by endBlock. */
  readonly first: number | null;
  readonly items: readonly Uint8Array[];
}

export interface CertificateRecord {
  readonly der: Uint8Array;
  readonly txHash: Uint8Array;
  /** Name of the validator whose intermediate signed it. */
  readonly issuer: string;
  /** Height of the block that published it. */
  readonly publishedAt: number;
}

export interface PublishedRecord {
  readonly time: number;
  readonly serials: readonly Uint8Array[];
}

/**
 * A certificate `cluster init` issued at genesis (genesis.ts): it has no issuance transaction;
 * `account` may revoke it as the requesting account may revoke an issued certificate.
 */
export interface GenesisCertificateRecord {
  readonly account: Uint8Array;
}

export interface RevocationRecord {
  readonly reason: number;
  readonly height: number;
  readonly time: number;
}

const uint = z.int().min(0);
const hash = bytes({ length: 32 });
const serial = bytes({ length: 16 });

const schemas = {
  issuance: z.strictObject({
    acct: hash,
    req: bytes({ min: 1 }),
    h: uint,
    life: uint,
    sn: serial,
    renews: serial.optional(),
    vt: uint.optional(),
  }),
  batch: z.strictObject({ t: uint, first: uint.optional(), items: z.array(hash) }),
  certificate: z.strictObject({ der: bytes({ min: 1 }), tx: hash, by: z.string(), at: uint }),
  published: z.strictObject({ t: uint, sns: z.array(serial) }),
  revocation: z.strictObject({ reason: uint, h: uint, t: uint }),
  rate: z.strictObject({ start: uint, count: uint }),
  genesis: z.strictObject({ acct: hash }),
  pending: z.array(uint),
  revokedCount: z.strictObject({ n: uint }),
  revokedPage: z.array(serial).min(1).max(REVOKED_PAGE_SERIALS),
};

/** Decodes a stored canonical-CBOR value with `schema`; `CA_CORRUPT_STATE` if it does not fit. */
export function decodeWith<T>(schema: z.ZodType<T>, value: Uint8Array, what: string): T {
  try {
    return parseInput(schema, decodeCanonical(value), what);
  } catch (error) {
    throw new CaStateError(
      'CA_CORRUPT_STATE',
      `stored ${what} does not decode: ${(error as Error).message}`,
      { what },
      { cause: error },
    );
  }
}

export function encodeIssuance(record: IssuanceRecord): Uint8Array {
  return encodeCanonical({
    acct: record.account,
    req: record.request,
    h: record.height,
    life: record.lifetimeSeconds,
    sn: record.serial,
    ...(record.renews === null ? {} : { renews: record.renews }),
    ...(record.validatedAt === null ? {} : { vt: record.validatedAt }),
  });
}

export function decodeIssuance(value: Uint8Array): IssuanceRecord {
  const r = decodeWith(schemas.issuance, value, 'issuance');
  return {
    account: r.acct,
    request: r.req,
    height: r.h,
    lifetimeSeconds: r.life,
    serial: r.sn,
    renews: r.renews ?? null,
    validatedAt: r.vt ?? null,
  };
}

const isUint = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/**
 * `encodeCanonical({ t, first?, items })` through the flat writer (src/codec/flat-canonical.ts,
 * byte-identical, and the general encoder for anything outside its subset): a block's batch is
 * re-encoded for each of its issuances, so this is O(items) byte copies, not a generic walk.
 */
export function encodeBatch(record: BatchRecord): Uint8Array {
  return encodeFlatCanonical({
    t: record.time,
    ...(record.first === null ? {} : { first: record.first }),
    items: record.items,
  });
}

export function decodeBatch(value: Uint8Array): BatchRecord {
  const r = decodeWith(schemas.batch, value, 'batch');
  return { time: r.t, first: r.first ?? null, items: r.items };
}

/** Whether `decodeBatch(encodeBatch(record))` gives `record` back (what the schema admits). */
function storableBatch(record: BatchRecord): boolean {
  return (
    isUint(record.time) &&
    (record.first === null || isUint(record.first)) &&
    record.items.every((item) => item instanceof Uint8Array && item.length === 32)
  );
}

export function encodeCertificateRecord(record: CertificateRecord): Uint8Array {
  return encodeCanonical({
    der: record.der,
    tx: record.txHash,
    by: record.issuer,
    at: record.publishedAt,
  });
}

export function decodeCertificateRecord(value: Uint8Array): CertificateRecord {
  const r = decodeWith(schemas.certificate, value, 'certificate');
  return { der: r.der, txHash: r.tx, issuer: r.by, publishedAt: r.at };
}

export function encodePublished(record: PublishedRecord): Uint8Array {
  return encodeCanonical({ t: record.time, sns: record.serials });
}

export function decodePublished(value: Uint8Array): PublishedRecord {
  const r = decodeWith(schemas.published, value, 'publication');
  return { time: r.t, serials: r.sns };
}

export function encodeRevocation(record: RevocationRecord): Uint8Array {
  return encodeCanonical({ reason: record.reason, h: record.height, t: record.time });
}

export function decodeRevocation(value: Uint8Array): RevocationRecord {
  const r = decodeWith(schemas.revocation, value, 'revocation');
  return { reason: r.reason, height: r.h, time: r.t };
}

export function encodeGenesisCertificateRecord(record: GenesisCertificateRecord): Uint8Array {
  return encodeCanonical({ acct: record.account });
}

export function decodeGenesisCertificateRecord(value: Uint8Array): GenesisCertificateRecord {
  return { account: decodeWith(schemas.genesis, value, 'genesis certificate').acct };
}

/** An account's fixed issuance window (rate-limit.ts). */
export interface RateWindow {
  readonly start: number;
  readonly count: number;
}

export function encodeRateWindow(window: RateWindow): Uint8Array {
  return encodeCanonical({ start: window.start, count: window.count });
}

export function decodeRateWindow(value: Uint8Array): { start: number; count: number } {
  return decodeWith(schemas.rate, value, 'rate window');
}

/** The start of the issuance window the latest committed block lies in (`RATE_WINDOW_KEY`). */
export function encodeRateWindowStart(start: number): Uint8Array {
  return encodeCanonical(start);
}

export function decodeRateWindowStart(value: Uint8Array): number {
  return decodeWith(uint, value, 'rate window start');
}

export function encodePending(heights: readonly number[]): Uint8Array {
  return encodeCanonical(heights);
}

export function decodePending(value: Uint8Array): number[] {
  return decodeWith(schemas.pending, value, 'pending list');
}

export function encodeRevokedCount(count: number): Uint8Array {
  return encodeCanonical({ n: count });
}

export function decodeRevokedCount(value: Uint8Array): number {
  return decodeWith(schemas.revokedCount, value, 'revoked count').n;
}

/** A page of revoked serials: 1 to `REVOKED_PAGE_SERIALS` of them. */
export function encodeRevokedPage(serials: readonly Uint8Array[]): Uint8Array {
  return encodeCanonical(serials);
}

export function decodeRevokedPage(value: Uint8Array): Uint8Array[] {
  return decodeWith(schemas.revokedPage, value, 'revoked page');
}

/**
 * The writes that add `serial` to `issuer`'s revoked list, given the list's current length:
 * the last page with the serial appended (a new page when the last one is full) and the new
 * count. Reads one page at most, so a revocation costs the same at any length of the list.
 */
export function appendRevoked(
  reader: CaStateReader,
  issuer: string,
  serial: Uint8Array,
): { key: Uint8Array; value: Uint8Array }[] {
  const count = reader.revokedCount(issuer);
  const page = Math.floor(count / REVOKED_PAGE_SERIALS);
  const filled = count % REVOKED_PAGE_SERIALS;
  const earlier = filled === 0 ? [] : reader.revokedPage(issuer, page, filled);
  return [
    { key: revokedPageKey(issuer, page), value: encodeRevokedPage([...earlier, serial.slice()]) },
    { key: revokedCountKey(issuer), value: encodeRevokedCount(count + 1) },
  ];
}

/**
 * Batches (a few blocks' worth) and issuance records remembered by `CaRecordCache`. An
 * issuance is read again for its publication in the next block, so two blocks' worth (2 × 256)
 * is what is needed; 1,024 records hold each request twice (bytes and record), at most ~64 MiB
 * with the largest requests.
 */
export const RECORD_CACHE_BATCHES = 16;
export const RECORD_CACHE_ISSUANCES = 1024;
/** Accounts whose rate window `CaRecordCache` remembers. */
export const RECORD_CACHE_RATE_WINDOWS = 4096;

interface Remembered<T> {
  readonly bytes: Uint8Array;
  readonly record: T;
}

/** The record remembered under `key` if it came from exactly `value`; else decodes and keeps it. */
function recall<K, T>(
  entries: BoundedMap<K, Remembered<T>>,
  key: K,
  value: Uint8Array,
  decode: (value: Uint8Array) => T,
): T {
  const known = entries.get(key);
  if (known !== undefined && bytesEqual(known.bytes, value)) return known.record;
  const record = decode(value);
  entries.set(key, { bytes: new Uint8Array(value), record });
  return record;
}

/**
 * Remembers `record` (a frozen copy the caller made of what it encoded) with a copy of `bytes`
 * under `key`, or forgets `key` when `record` is null (the encoded value would not decode back to
 * it). Returns `bytes`.
 */
function remember<K, T>(
  entries: BoundedMap<K, Remembered<T>>,
  key: K,
  bytes: Uint8Array,
  record: T | null,
): Uint8Array {
  if (record === null) entries.delete(key);
  else entries.set(key, { bytes: new Uint8Array(bytes), record });
  return bytes;
}

/**
 * Decoded records of one `ca` module, each kept with the exact bytes it was decoded from (or
 * encoded to) and returned only for equal bytes, so a read gives what decoding would. A block's
 * batch is read and rewritten by each of its issuances and every issuance record is read again
 * for the publication: without this, decoding them costs O(N²) per block. The pending list and
 * an account's rate window are read back after each write as well. The records are frozen and
 * shared: callers copy them to change them.
 */
export class CaRecordCache {
  private readonly batches = new BoundedMap<number, Remembered<BatchRecord>>(RECORD_CACHE_BATCHES);
  private readonly issuances = new BoundedMap<string, Remembered<IssuanceRecord>>(
    RECORD_CACHE_ISSUANCES,
  );
  private readonly rateWindows = new BoundedMap<string, Remembered<RateWindow>>(
    RECORD_CACHE_RATE_WINDOWS,
  );
  private readonly pendingList = new BoundedMap<'pending', Remembered<readonly number[]>>(1);

  batch(height: number, value: Uint8Array): BatchRecord {
    return recall(this.batches, height, value, (bytes) => freezeBatch(decodeBatch(bytes)));
  }

  /** `encodeBatch(record)`, remembered as the batch of `height` when it decodes back to `record`. */
  encodeBatch(height: number, record: BatchRecord): Uint8Array {
    const bytes = encodeBatch(record);
    // Copies, as a decode would give: the caller keeps its arrays.
    const kept = storableBatch(record)
      ? freezeBatch({ ...record, items: record.items.map((item) => new Uint8Array(item)) })
      : null;
    return remember(this.batches, height, bytes, kept);
  }

  issuance(key: string, value: Uint8Array): IssuanceRecord {
    return recall(this.issuances, key, value, (bytes) => Object.freeze(decodeIssuance(bytes)));
  }

  /** `encodeIssuance(record)`, remembered under `key` when it decodes back to `record`. */
  encodeIssuance(key: string, record: IssuanceRecord): Uint8Array {
    const bytes = encodeIssuance(record);
    const kept = storableIssuance(record)
      ? Object.freeze({
          account: new Uint8Array(record.account),
          request: new Uint8Array(record.request),
          height: record.height,
          lifetimeSeconds: record.lifetimeSeconds,
          serial: new Uint8Array(record.serial),
          renews: record.renews === null ? null : new Uint8Array(record.renews),
          validatedAt: record.validatedAt,
        })
      : null;
    return remember(this.issuances, key, bytes, kept);
  }

  rateWindow(key: string, value: Uint8Array): RateWindow {
    return recall(this.rateWindows, key, value, (bytes) => Object.freeze(decodeRateWindow(bytes)));
  }

  /** `encodeRateWindow(window)`, remembered for the account `key` when it decodes back to it. */
  encodeRateWindow(key: string, window: RateWindow): Uint8Array {
    const bytes = encodeRateWindow(window);
    const kept =
      isUint(window.start) && isUint(window.count)
        ? Object.freeze({ start: window.start, count: window.count })
        : null;
    return remember(this.rateWindows, key, bytes, kept);
  }

  pending(value: Uint8Array): readonly number[] {
    return recall(this.pendingList, 'pending', value, (bytes) =>
      Object.freeze(decodePending(bytes)),
    );
  }

  /** `encodePending(heights)`, remembered when it decodes back to `heights`. */
  encodePending(heights: readonly number[]): Uint8Array {
    const bytes = encodePending(heights);
    const kept = heights.every(isUint) ? Object.freeze([...heights]) : null;
    return remember(this.pendingList, 'pending', bytes, kept);
  }
}

/** Whether `decodeIssuance(encodeIssuance(record))` gives `record` back (the schema's bounds). */
function storableIssuance(record: IssuanceRecord): boolean {
  const sized = (value: unknown, length: number): boolean =>
    value instanceof Uint8Array && value.length === length;
  return (
    sized(record.account, 32) &&
    record.request instanceof Uint8Array &&
    record.request.length >= 1 &&
    isUint(record.height) &&
    isUint(record.lifetimeSeconds) &&
    sized(record.serial, 16) &&
    (record.renews === null || sized(record.renews, 16)) &&
    (record.validatedAt === null || isUint(record.validatedAt))
  );
}

function freezeBatch(record: BatchRecord): BatchRecord {
  return Object.freeze({ ...record, items: Object.freeze([...record.items]) });
}

/** Typed reads over a module-relative state reader (the module's view, or a node's committed state). */
export class CaStateReader {
  /** `cache`: the module's decoded records (module.ts); absent, every read decodes. */
  constructor(
    private readonly state: ModuleStateReader,
    private readonly cache?: CaRecordCache,
  ) {}

  issuance(txHash: Uint8Array): IssuanceRecord | null {
    const value = this.state.get(requestKey(txHash));
    if (value === null) return null;
    return this.cache === undefined
      ? decodeIssuance(value)
      : this.cache.issuance(toHex(txHash), value);
  }

  issuanceTx(serialNumber: Uint8Array): Uint8Array | null {
    return this.state.get(serialKey(serialNumber));
  }

  batch(height: number): BatchRecord | null {
    const value = this.state.get(batchKey(height));
    if (value === null) return null;
    return this.cache === undefined ? decodeBatch(value) : this.cache.batch(height, value);
  }

  pending(): readonly number[] {
    const value = this.state.get(PENDING_KEY);
    if (value === null) return [];
    return this.cache === undefined ? decodePending(value) : this.cache.pending(value);
  }

  certificate(serialNumber: Uint8Array): CertificateRecord | null {
    const value = this.state.get(certificateKey(serialNumber));
    return value === null ? null : decodeCertificateRecord(value);
  }

  published(height: number): PublishedRecord | null {
    const value = this.state.get(publishedKey(height));
    return value === null ? null : decodePublished(value);
  }

  revocation(serialNumber: Uint8Array): RevocationRecord | null {
    const value = this.state.get(revocationKey(serialNumber));
    return value === null ? null : decodeRevocation(value);
  }

  /** The owner of a genesis bootstrap certificate (genesis.ts); null for any other serial. */
  genesisCertificate(serialNumber: Uint8Array): GenesisCertificateRecord | null {
    const value = this.state.get(genesisCertificateKey(serialNumber));
    return value === null ? null : decodeGenesisCertificateRecord(value);
  }

  /** How many of `issuer`'s certificates are revoked (one read, whatever the number). */
  revokedCount(issuer: string): number {
    const value = this.state.get(revokedCountKey(issuer));
    return value === null ? 0 : decodeRevokedCount(value);
  }

  /**
   * Page `page` of `issuer`'s revoked serials, which the count says holds `expected` serials;
   * `CA_CORRUPT_STATE` when it is missing or holds another number.
   */
  revokedPage(issuer: string, page: number, expected: number): Uint8Array[] {
    const value = this.state.get(revokedPageKey(issuer, page));
    const serials = value === null ? null : decodeRevokedPage(value);
    if (serials === null || serials.length !== expected) {
      throw new CaStateError(
        'CA_CORRUPT_STATE',
        `revoked page ${page} of ${issuer} holds ${serials?.length ?? 'no'} serials, not ${expected}`,
        { what: 'revoked page' },
      );
    }
    return serials;
  }

  /**
   * The serials of `issuer`'s revoked certificates, in revocation order (what its CRL lists):
   * the count, then every page, ⌈count / REVOKED_PAGE_SERIALS⌉ reads.
   */
  revokedBy(issuer: string): Uint8Array[] {
    const count = this.revokedCount(issuer);
    const serials: Uint8Array[] = [];
    for (let page = 0; page * REVOKED_PAGE_SERIALS < count; page++) {
      const expected = Math.min(REVOKED_PAGE_SERIALS, count - page * REVOKED_PAGE_SERIALS);
      serials.push(...this.revokedPage(issuer, page, expected));
    }
    return serials;
  }

  /** The transparency log's consensus tree head (the empty log before any publication). */
  treeHead(): ConsensusTreeHead {
    return decodeTreeHead(this.state.get(TREE_HEAD_KEY));
  }

  /** The start of the latest committed block's issuance window; null before a block recorded one. */
  rateWindowStart(): number | null {
    const value = this.state.get(RATE_WINDOW_KEY);
    return value === null ? null : decodeRateWindowStart(value);
  }

  rateWindow(account: Uint8Array): RateWindow | null {
    const value = this.state.get(rateKey(account));
    if (value === null) return null;
    return this.cache === undefined
      ? decodeRateWindow(value)
      : this.cache.rateWindow(toHex(account), value);
  }
}
