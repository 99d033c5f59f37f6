import { CtError, CtErrorCode } from './errors.js';

/**
 * RFC 6962 §3.4 log entries. A leaf is the TLS encoding of
 *
 *   struct { Version version = v1(0); MerkleLeafType leaf_type = timestamped_entry(0);
 *            TimestampedEntry timestamped_entry; } MerkleTreeLeaf;
 *   struct { uint64 timestamp; LogEntryType entry_type;
 *            select (entry_type) { case x509_entry: ASN.1Cert;   // opaque <1..2^24-1>
 *                                  case precert_entry: PreCert; } signed_entry;
 *            CtExtensions extensions; } TimestampedEntry;         // opaque <0..2^16-1>
 *   struct { opaque issuer_key_hash[32]; TBSCertificate tbs_certificate; } PreCert;
 *
 * and its Merkle leaf hash is SHA-256(0x00 || leaf) (RFC 6962 §2.1).
 */

/**
 * Largest leaf the log accepts: C2SP tlog-tiles entry bundles prefix each entry with a uint16
 * length, so a longer leaf could not be served as tiles.
 */
export const MAX_LEAF_BYTES = 65_535;
/** Largest `extra_data` (the submitted chain, RFC 6962 §4.6) stored with one entry. */
export const MAX_EXTRA_DATA_BYTES = 262_144;
export const ISSUER_KEY_HASH_BYTES = 32;

const MAX_UINT24 = 0xffffff;
const MAX_UINT16 = 0xffff;
/** version v1 (0) and leaf_type timestamped_entry (0). */
const LEAF_HEADER_BYTES = 2;

export type SignedEntry =
  | { readonly type: 'x509'; readonly certificate: Uint8Array }
  | {
      readonly type: 'precert';
      readonly issuerKeyHash: Uint8Array;
      readonly tbsCertificate: Uint8Array;
    };

export interface TimestampedEntry {
  /** Milliseconds since the epoch (RFC 6962 §3.4), a safe integer. */
  readonly timestamp: number;
  readonly entry: SignedEntry;
  /** Opaque CtExtensions (RFC 6962 §3.2); empty unless the log defines some. */
  readonly extensions?: Uint8Array;
}

function invalid(message: string, detail: Record<string, unknown> = {}): CtError {
  return new CtError(CtErrorCode.INVALID_ENTRY, message, detail);
}

function requireBytes(value: unknown, name: string, min: number, max: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalid(`${name} must be a Uint8Array`, { name });
  if (value.length < min || value.length > max) {
    throw invalid(`${name} must be ${min}..${max} bytes, got ${value.length}`, {
      name,
      length: value.length,
    });
  }
  return value;
}

function requireTimestamp(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`timestamp must be a non-negative safe integer, got ${String(value)}`);
  }
  return value;
}

class Writer {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  uint(value: number, bytes: number): this {
    const out = new Uint8Array(bytes);
    let rest = value;
    for (let i = bytes - 1; i >= 0; i--) {
      out[i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
    return this.raw(out);
  }

  raw(bytes: Uint8Array): this {
    this.parts.push(bytes);
    this.length += bytes.length;
    return this;
  }

  vector(bytes: Uint8Array, lengthBytes: number): this {
    return this.uint(bytes.length, lengthBytes).raw(bytes);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const part of this.parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}

class Reader {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  uint(bytes: number, what: string): number {
    const end = this.take(bytes, what);
    let value = 0;
    for (let i = end - bytes; i < end; i++) value = value * 256 + (this.bytes[i] as number);
    return value;
  }

  raw(length: number, what: string): Uint8Array {
    const end = this.take(length, what);
    return this.bytes.slice(end - length, end);
  }

  vector(lengthBytes: number, min: number, what: string): Uint8Array {
    const length = this.uint(lengthBytes, `${what} length`);
    if (length < min) throw invalid(`${what} is shorter than ${min} bytes`);
    return this.raw(length, what);
  }

  done(): boolean {
    return this.offset === this.bytes.length;
  }

  private take(length: number, what: string): number {
    if (this.offset + length > this.bytes.length) throw invalid(`truncated ${what}`);
    this.offset += length;
    return this.offset;
  }
}

/** The MerkleTreeLeaf bytes of one entry; throws `INVALID_ENTRY` for anything out of bounds. */
export function encodeMerkleTreeLeaf(entry: TimestampedEntry): Uint8Array {
  if (typeof entry !== 'object' || entry === null) throw invalid('entry must be an object');
  const writer = new Writer().uint(0, 1).uint(0, 1).uint(requireTimestamp(entry.timestamp), 8);
  const signed = entry.entry as SignedEntry | undefined;
  if (signed?.type === 'x509') {
    writer.uint(0, 2).vector(requireBytes(signed.certificate, 'certificate', 1, MAX_UINT24), 3);
  } else if (signed?.type === 'precert') {
    const keyHash = requireBytes(
      signed.issuerKeyHash,
      'issuerKeyHash',
      ISSUER_KEY_HASH_BYTES,
      ISSUER_KEY_HASH_BYTES,
    );
    const tbs = requireBytes(signed.tbsCertificate, 'tbsCertificate', 1, MAX_UINT24);
    writer.uint(1, 2).raw(keyHash).vector(tbs, 3);
  } else {
    throw invalid(`entry type must be 'x509' or 'precert'`);
  }
  writer.vector(
    requireBytes(entry.extensions ?? new Uint8Array(0), 'extensions', 0, MAX_UINT16),
    2,
  );
  const leaf = writer.finish();
  if (leaf.length > MAX_LEAF_BYTES) {
    throw invalid(`leaf is ${leaf.length} bytes, the limit is ${MAX_LEAF_BYTES}`, {
      length: leaf.length,
    });
  }
  return leaf;
}

/** Parses MerkleTreeLeaf bytes strictly: no trailing bytes, known version, types and bounds. */
export function decodeMerkleTreeLeaf(leaf: Uint8Array): TimestampedEntry {
  requireBytes(leaf, 'leaf', LEAF_HEADER_BYTES, MAX_LEAF_BYTES);
  const reader = new Reader(leaf);
  const version = reader.uint(1, 'version');
  const leafType = reader.uint(1, 'leaf_type');
  if (version !== 0) throw invalid(`unknown MerkleTreeLeaf version ${version}`);
  if (leafType !== 0) throw invalid(`unknown MerkleLeafType ${leafType}`);
  const timestamp = reader.uint(8, 'timestamp');
  if (!Number.isSafeInteger(timestamp)) throw invalid('timestamp beyond 2^53 - 1');
  const entryType = reader.uint(2, 'entry_type');
  let entry: SignedEntry;
  if (entryType === 0) {
    entry = { type: 'x509', certificate: reader.vector(3, 1, 'certificate') };
  } else if (entryType === 1) {
    const issuerKeyHash = reader.raw(ISSUER_KEY_HASH_BYTES, 'issuer_key_hash');
    entry = { type: 'precert', issuerKeyHash, tbsCertificate: reader.vector(3, 1, 'tbs') };
  } else {
    throw invalid(`unknown LogEntryType ${entryType}`);
  }
  const extensions = reader.vector(2, 0, 'extensions');
  if (!reader.done()) throw invalid('trailing bytes after MerkleTreeLeaf');
  return { timestamp, entry, extensions };
}

/** `extra_data` of an x509 entry (RFC 6962 §4.6): the chain `ASN.1Cert certificate_chain<0..2^24-1>`. */
export function encodeCertificateChain(chain: readonly Uint8Array[]): Uint8Array {
  const inner = new Writer();
  chain.forEach((cert, i) => inner.vector(requireBytes(cert, `chain[${i}]`, 1, MAX_UINT24), 3));
  const list = inner.finish();
  if (list.length > MAX_UINT24) throw invalid('certificate chain exceeds 2^24 - 1 bytes');
  return new Writer().vector(list, 3).finish();
}

/**
 * `extra_data` of a precert entry (RFC 6962 §4.6): `PrecertChainEntry { ASN.1Cert
 * pre_certificate; ASN.1Cert precertificate_chain<0..2^24-1>; }`.
 */
export function encodePrecertChainEntry(
  preCertificate: Uint8Array,
  chain: readonly Uint8Array[],
): Uint8Array {
  const pre = new Writer().vector(requireBytes(preCertificate, 'preCertificate', 1, MAX_UINT24), 3);
  return new Writer().raw(pre.finish()).raw(encodeCertificateChain(chain)).finish();
}
