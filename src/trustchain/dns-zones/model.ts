import type { ResourceRecord } from '../dns/index.js';

/**
 * The data model of the DNS zone module (docs/dns.md, "Zones in consensus"): zones, the names
 * registered in them, their RRsets, the transactions that change them, and the limits that bound
 * every stored value.
 */

export const DNS_ZONES_MODULE_NAME = 'dns';

/** Largest transaction body the module reads (the envelope allows 32 KiB). */
export const MAX_DNS_BODY_BYTES = 16 * 1024;
/** Zones the module holds, cluster and delegated together; bounds the zone list (one key). */
export const MAX_ZONES = 64;
/** Admin keys per zone. */
export const MAX_ZONE_ADMINS = 16;
/** NS hosts at a zone apex (13 fit a classic 512-byte referral). */
export const MAX_NAMESERVERS = 13;
/** Registered names per zone; with 256 index buckets that is ~256 names (~10 KB) per bucket. */
export const MAX_NAMES_PER_ZONE = 65_536;
/** Names one key may own. */
export const MAX_NAMES_PER_OWNER = 256;
/** Records at one name, all types together. */
export const MAX_RECORDS_PER_NAME = 32;
/** RDATA bytes of one RRset. */
export const MAX_RRSET_BYTES = 4096;
/** RDATA bytes at one name, all RRsets together. */
export const MAX_NAME_RDATA_BYTES = 16 * 1024;
/** Buckets of a zone's name index (the first byte of SHA-256 of the name's wire form). */
export const INDEX_BUCKETS = 256;

/** Who may register a name that has no registered ancestor in the zone. */
export const ZONE_POLICIES = ['open', 'admins'] as const;
export type ZonePolicy = (typeof ZONE_POLICIES)[number];

/** `cluster`: written from genesis; its admins may create zones. `delegated`: created later. */
export type ZoneKind = 'cluster' | 'delegated';

/** The apex SOA's fields except the serial, which the module sets (the height of the last change). */
export interface SoaParams {
  /** TTL of the SOA record, 0..2^31-1. */
  readonly ttl: number;
  /** Primary name server (canonical name text). */
  readonly mname: string;
  /** Responsible mailbox as a name (`hostmaster.hypermesh.`). */
  readonly rname: string;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  /** Negative-caching TTL (RFC 2308 §4). */
  readonly minimum: number;
}

/** The apex NS RRset. */
export interface NameServers {
  readonly ttl: number;
  /** 1 to MAX_NAMESERVERS distinct canonical names, sorted. */
  readonly hosts: readonly string[];
}

/** What `zone-create` and `zone-update` set. */
export interface ZoneParams {
  /** Canonical name text with the trailing dot (`hypermesh.`). */
  readonly apex: string;
  /** 1 to MAX_ZONE_ADMINS distinct raw Ed25519 keys, sorted bytewise. */
  readonly admins: readonly Uint8Array[];
  readonly policy: ZonePolicy;
  readonly soa: SoaParams;
  readonly nameservers: NameServers;
}

/** A zone as stored (the value a `dns/zone` query proves). */
export interface ZoneInfo extends ZoneParams {
  readonly kind: ZoneKind;
  /** The SOA serial: height of the last applied transaction in the zone, modulo 2^32. */
  readonly serial: number;
  readonly createdAt: number;
  /** Registered names (the apex is not one). */
  readonly names: number;
}

/** One RRset as stored: RDATA in canonical wire form, sorted bytewise, no duplicates. */
export interface StoredRRset {
  readonly type: number;
  readonly ttl: number;
  readonly rdata: readonly Uint8Array[];
}

/** A name's entry (the value a `dns/name` query proves). */
export interface NameEntry {
  /** The owner's raw Ed25519 key; null at the apex, whose records the zone admins control. */
  readonly owner: Uint8Array | null;
  readonly registeredAt: number;
  readonly updatedAt: number;
  /** Sorted by type code. SOA and the apex NS come from the zone, never from here. */
  readonly rrsets: readonly StoredRRset[];
}

/** A proven name with its records decoded. */
export interface DnsName extends Omit<NameEntry, 'rrsets'> {
  readonly name: string;
  readonly records: readonly ResourceRecord[];
}

export interface ZoneCreateTx extends ZoneParams {
  readonly op: 'zone-create';
}
export interface ZoneUpdateTx extends ZoneParams {
  readonly op: 'zone-update';
}
export interface NameRegisterTx {
  readonly op: 'name-register';
  readonly name: string;
}
export interface NameTransferTx {
  readonly op: 'name-transfer';
  readonly name: string;
  readonly recipient: Uint8Array;
}
export interface NameReleaseTx {
  readonly op: 'name-release';
  readonly name: string;
}
export interface RecordsSetTx {
  readonly op: 'records-set';
  readonly name: string;
  readonly type: number;
  readonly ttl: number;
  /** Canonical RDATA, sorted bytewise. */
  readonly rdata: readonly Uint8Array[];
}
export interface RecordsDeleteTx {
  readonly op: 'records-delete';
  readonly name: string;
  readonly type: number;
}

export type DnsZonesTx =
  | ZoneCreateTx
  | ZoneUpdateTx
  | NameRegisterTx
  | NameTransferTx
  | NameReleaseTx
  | RecordsSetTx
  | RecordsDeleteTx;

export const DNS_OPS = [
  'zone-create',
  'zone-update',
  'name-register',
  'name-transfer',
  'name-release',
  'records-set',
  'records-delete',
] as const;

/** The SOA serial for a change at `height` (RFC 1982 serial arithmetic handles the wrap). */
export function serialAt(height: number): number {
  return height % 0x1_0000_0000;
}
