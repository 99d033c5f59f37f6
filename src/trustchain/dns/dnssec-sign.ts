import { p256Sign, p256Verify } from '../../crypto/p256.js';
import { WireWriter } from './buffer.js';
import { CLASS_IN } from './constants.js';
import { ALGORITHM_ECDSAP256SHA256, keyTag } from './dnssec-keys.js';
import type { DnssecSigningKey } from './dnssec-keys.js';
import { isWildcardKey, keyLabelOffsets, keyToName, keyToWire, nameKey } from './names.js';
import { canonicalRRset, encodeRecordCanonical, recordTypeCode } from './records.js';
import type { DnskeyData, KnownRecord, ResourceRecord, RrsigData } from './records.js';

/**
 * RRSIG signing and verification (RFC 4034 §3, §6; RFC 4035 §5.3; RFC 6605 §4). The answer
 * engine signs RRsets it already holds in canonical wire form (`signRRsetWire`); the model-level
 * `signRecords` and `verifyRrsig` serve tools and tests.
 */

/** Fields of an RRSIG other than the signature (RFC 4034 §3.1). */
export type RrsigFields = Omit<RrsigData, 'signature'>;

/**
 * RFC 4034 §3.1.3 Labels of an owner: its labels without the root, and without a leading `*`
 * (so a validator sees a wildcard-synthesised answer by `labels` < the answer's label count).
 */
export function rrsigLabels(ownerKey: string): number {
  const labels = keyLabelOffsets(ownerKey).length - 1;
  return isWildcardKey(ownerKey) ? labels - 1 : labels;
}

/** RFC 4034 §3.1.8.1 RRSIG_RDATA: the RRSIG RDATA up to the signature, signer name canonical. */
export function rrsigPrefix(fields: RrsigFields): Uint8Array {
  const signer = keyToWire(nameKey(fields.signerName));
  const w = new WireWriter(18 + signer.length);
  w.u16(fields.typeCovered);
  w.u8(fields.algorithm);
  w.u8(fields.labels);
  w.u32(fields.originalTtl);
  w.u32(fields.expiration);
  w.u32(fields.inception);
  w.u16(fields.keyTag);
  w.bytes(signer);
  return w.finish();
}

/**
 * The signed data `RRSIG_RDATA || RR(1) || RR(2)...` where each RR is `owner || tail`: the
 * owner in canonical form and a tail of TYPE, CLASS, original TTL, RDLENGTH and canonical
 * RDATA, tails in canonical order (RFC 4034 §6.3) — the form zones keep their RRsets in.
 */
export function signedData(
  prefix: Uint8Array,
  ownerWire: Uint8Array,
  tails: readonly Uint8Array[],
): Uint8Array {
  let size = prefix.length;
  for (const tail of tails) size += ownerWire.length + tail.length;
  const data = new Uint8Array(size);
  data.set(prefix, 0);
  let at = prefix.length;
  for (const tail of tails) {
    data.set(ownerWire, at);
    at += ownerWire.length;
    data.set(tail, at);
    at += tail.length;
  }
  return data;
}

/** RRSIG RDATA for an RRset held as owner key + canonical tails; tails carry the original TTL. */
export function signRRsetWire(
  ownerKey: string,
  type: number,
  ttl: number,
  tails: readonly Uint8Array[],
  key: DnssecSigningKey,
  signerKey: string,
  inception: number,
  expiration: number,
): Uint8Array {
  const prefix = rrsigPrefix({
    typeCovered: type,
    algorithm: key.dnskey.algorithm,
    labels: rrsigLabels(ownerKey),
    originalTtl: ttl,
    expiration: expiration >>> 0,
    inception: inception >>> 0,
    keyTag: key.keyTag,
    signerName: keyToName(signerKey),
  });
  const signature = p256Sign(signedData(prefix, keyToWire(ownerKey), tails), key.privateKey);
  const rdata = new Uint8Array(prefix.length + signature.length);
  rdata.set(prefix, 0);
  rdata.set(signature, prefix.length);
  return rdata;
}

/** The owner a signature covers: the RRset's owner, or `*.<rightmost labels>` (RFC 4035 §5.3.2). */
function signedOwner(ownerKey: string, labels: number): string | undefined {
  const offsets = keyLabelOffsets(ownerKey);
  const count = offsets.length - 1;
  const own = isWildcardKey(ownerKey) ? count - 1 : count;
  if (labels === own) return ownerKey;
  if (labels > own) return undefined;
  return `\x01*${ownerKey.slice(offsets[count - labels]!)}`;
}

/** Signed data for model records (one RRset) under an RRSIG's fields, or undefined if they do not fit. */
function recordsSignedData(
  records: readonly ResourceRecord[],
  fields: RrsigFields,
): Uint8Array | undefined {
  const first = records[0];
  if (first === undefined) return undefined;
  const ownerKey = nameKey(first.name);
  const type = recordTypeCode(first);
  for (const rr of records) {
    if (nameKey(rr.name) !== ownerKey || recordTypeCode(rr) !== type || rr.class !== first.class)
      return undefined;
  }
  if (type !== fields.typeCovered) return undefined;
  const owner = signedOwner(ownerKey, fields.labels);
  if (owner === undefined) return undefined;
  const name = keyToName(owner);
  const parts = canonicalRRset(records).map((rr) =>
    encodeRecordCanonical({ ...rr, name } as ResourceRecord, fields.originalTtl),
  );
  return signedData(rrsigPrefix(fields), new Uint8Array(0), parts);
}

/** Signs one RRset given as records (any owner; a wildcard owner gets labels minus one). */
export function signRecords(
  records: readonly ResourceRecord[],
  key: DnssecSigningKey,
  signerName: string,
  inception: number,
  expiration: number,
  ttl = records[0]?.ttl ?? 0,
): KnownRecord<'RRSIG'> {
  const first = records[0]!;
  const fields: RrsigFields = {
    typeCovered: recordTypeCode(first),
    algorithm: key.dnskey.algorithm,
    labels: rrsigLabels(nameKey(first.name)),
    originalTtl: ttl,
    expiration: expiration >>> 0,
    inception: inception >>> 0,
    keyTag: key.keyTag,
    signerName: keyToName(nameKey(signerName)),
  };
  const data = recordsSignedData(records, fields)!;
  return {
    name: first.name,
    type: 'RRSIG',
    class: CLASS_IN,
    ttl,
    data: { ...fields, signature: p256Sign(data, key.privateKey) },
  };
}

/** RFC 1982 serial comparison of two 32-bit times: whether `a` is before or at `b`. */
function serialNotAfter(a: number, b: number): boolean {
  return (b - a) >>> 0 < 0x80000000;
}

/**
 * RFC 4035 §5.3: whether `rrsig` is a valid algorithm-13 signature by `dnskey` over `records`
 * (one RRset, as received: any case, any order, owner the synthesised name for a wildcard
 * answer). With `now` (seconds since 1970), the validity window is checked too.
 */
export function verifyRrsig(
  records: readonly ResourceRecord[],
  rrsig: RrsigData,
  dnskey: DnskeyData,
  now?: number,
): boolean {
  if (rrsig.algorithm !== ALGORITHM_ECDSAP256SHA256 || dnskey.algorithm !== rrsig.algorithm)
    return false;
  if (dnskey.protocol !== 3 || (dnskey.flags & 0x0100) === 0) return false;
  if (keyTag(dnskey) !== rrsig.keyTag || dnskey.publicKey.length !== 64) return false;
  if (now !== undefined) {
    const t = Math.floor(now) >>> 0;
    if (!serialNotAfter(rrsig.inception, t) || !serialNotAfter(t, rrsig.expiration)) return false;
  }
  const data = recordsSignedData(records, rrsig);
  if (data === undefined) return false;
  const point = new Uint8Array(65);
  point[0] = 0x04;
  point.set(dnskey.publicKey, 1);
  return p256Verify(rrsig.signature, data, point);
}
