import { z } from 'zod';
import { encodeCanonical } from '../../codec/cbor.js';
import { bytes } from '../../codec/schema.js';
import type { ModuleStateReader } from '../../consensus/application/module.js';
import { validatorAddress } from '../../consensus/validator-set.js';
import { concatBytes, toHex } from '../../crypto/bytes.js';
import type { FalconBackend } from '../../crypto/falcon.js';
import { sha256 } from '../../crypto/hash.js';
import { buildTrustBundle, type TrustBundle } from '../ca/bundle.js';
import { parseIssuer } from '../ca/issue.js';
import { PROFILES } from '../ca/profiles.js';
import type { CaIssuer, CaModuleConfig } from './config.js';
import { decodeWith } from './state.js';

/**
 * Intermediates added after genesis (docs/ca.md, "Adding a validator's intermediate"), under
 * the router's `ca/` prefix:
 *
 *   ca/prop/<32-byte hash>  an open proposal: its `proposalHash` (intermediate and node key) → the
 *                           intermediate, its root FALCON endorsement, the validator's name and
 *                           node key, the proposing height, the last height approvals are
 *                           accepted, and the names of the holders that approved it
 *   ca/props                the open proposals' hashes, in proposal order
 *   ca/int/<name>           an intermediate in effect: the same fields and the activation height
 *   ca/ints                 the added intermediates' names, in activation order
 *
 * The issuers (the rotation order of publication) are the genesis intermediates in name order
 * followed by the added ones in activation order, so adding one never moves an existing issuer.
 */

/** Open proposals at once (expired ones are dropped when a new one arrives). */
export const MAX_INTERMEDIATE_PROPOSALS = 16;
/** Blocks after its proposal during which a proposal accepts approvals (genesis may change it). */
export const DEFAULT_INTERMEDIATE_PROPOSAL_BLOCKS = 1000;
/**
 * The least remaining validity (notAfter − block time) an intermediate must have when it is
 * proposed and when it is approved: the node profile's longest lifetime (30 days) plus a 60-day
 * margin. The issuable window ends at the earliest issuer's notAfter, so a short-lived addition
 * would otherwise cut every renewal short and then stop issuance for the whole cluster.
 */
export const MIN_INTERMEDIATE_REMAINING_MS =
  (PROFILES.node.maxLifetimeSeconds + 60 * 86_400) * 1000;

const encoder = new TextEncoder();
const PROP = encoder.encode('prop/');
const INT = encoder.encode('int/');
export const PROPOSALS_KEY = encoder.encode('props');
export const ADDED_INTERMEDIATES_KEY = encoder.encode('ints');

export const proposalKey = (hash: Uint8Array): Uint8Array => concatBytes(PROP, hash);
const ABANDONED = encoder.encode('abandoned/');
/**
 * Marks a proposal that expired unapproved: it can never be proposed again (its root
 * endorsement never expires, so anyone could otherwise replay it from the chain and hold the
 * name's slot). Only the root holders make endorsements, so these markers grow with their
 * ceremonies, not with what anyone submits.
 */
export const abandonedProposalKey = (hash: Uint8Array): Uint8Array => concatBytes(ABANDONED, hash);

const PROPOSAL_HASH_CONTEXT = 'hypermesh/trustchain-ca/intermediate-proposal';

/**
 * What a proposal is stored under and approvals name: SHA-256 of the deterministic CBOR
 * ["hypermesh/trustchain-ca/intermediate-proposal", 1, intermediate DER, node key]. It covers
 * the key, so a holder approving a hash approves that pairing and no other.
 */
export function proposalHash(certificate: Uint8Array, account: Uint8Array): Uint8Array {
  return sha256(encodeCanonical([PROPOSAL_HASH_CONTEXT, 1, certificate, account]));
}
export const addedIntermediateKey = (name: string): Uint8Array =>
  concatBytes(INT, encoder.encode(name));

export interface IntermediateProposal {
  readonly name: string;
  /** The validator's node Ed25519 key: its account once the intermediate is in effect. */
  readonly account: Uint8Array;
  readonly certificate: Uint8Array;
  readonly endorsement: Uint8Array;
  /** Height of the block that committed the proposal. */
  readonly height: number;
  /** The last height at which an approval is accepted. */
  readonly expiresAt: number;
  /** Names of the intermediate holders that approved it, in approval order. */
  readonly approvals: readonly string[];
}

export interface AddedIntermediateRecord {
  readonly name: string;
  readonly account: Uint8Array;
  readonly certificate: Uint8Array;
  readonly endorsement: Uint8Array;
  readonly proposedAt: number;
  /** Height of the block whose approval put it into effect. */
  readonly activatedAt: number;
  /** The holders whose approvals put it into effect. */
  readonly approvals: readonly string[];
}

const uint = z.int().min(0);
const schemas = {
  proposal: z.strictObject({
    name: z.string(),
    acct: bytes({ length: 32 }),
    der: bytes({ min: 1 }),
    endo: bytes({ min: 1 }),
    h: uint,
    exp: uint,
    appr: z.array(z.string()),
  }),
  added: z.strictObject({
    name: z.string(),
    acct: bytes({ length: 32 }),
    der: bytes({ min: 1 }),
    endo: bytes({ min: 1 }),
    h: uint,
    at: uint,
    appr: z.array(z.string()),
  }),
  hashes: z.array(bytes({ length: 32 })),
  names: z.array(z.string()),
};

export function encodeProposal(record: IntermediateProposal): Uint8Array {
  return encodeCanonical({
    name: record.name,
    acct: record.account,
    der: record.certificate,
    endo: record.endorsement,
    h: record.height,
    exp: record.expiresAt,
    appr: [...record.approvals],
  });
}

export function decodeProposal(value: Uint8Array): IntermediateProposal {
  const r = decodeWith(schemas.proposal, value, 'intermediate proposal');
  return {
    name: r.name,
    account: r.acct,
    certificate: r.der,
    endorsement: r.endo,
    height: r.h,
    expiresAt: r.exp,
    approvals: r.appr,
  };
}

export function encodeAddedIntermediate(record: AddedIntermediateRecord): Uint8Array {
  return encodeCanonical({
    name: record.name,
    acct: record.account,
    der: record.certificate,
    endo: record.endorsement,
    h: record.proposedAt,
    at: record.activatedAt,
    appr: [...record.approvals],
  });
}

export function decodeAddedIntermediate(value: Uint8Array): AddedIntermediateRecord {
  const r = decodeWith(schemas.added, value, 'added intermediate');
  return {
    name: r.name,
    account: r.acct,
    certificate: r.der,
    endorsement: r.endo,
    proposedAt: r.h,
    activatedAt: r.at,
    approvals: r.appr,
  };
}

export const encodeHashList = (hashes: readonly Uint8Array[]): Uint8Array =>
  encodeCanonical([...hashes]);
export const encodeNameList = (names: readonly string[]): Uint8Array => encodeCanonical([...names]);

/** Typed reads of the intermediate governance state over a module-relative reader. */
export class IntermediateStateReader {
  constructor(private readonly state: ModuleStateReader) {}

  proposal(hash: Uint8Array): IntermediateProposal | null {
    const value = this.state.get(proposalKey(hash));
    return value === null ? null : decodeProposal(value);
  }

  /** Whether the proposal `hash` expired unapproved (dropped since, or still stored). */
  abandoned(hash: Uint8Array): boolean {
    return this.state.get(abandonedProposalKey(hash)) !== null;
  }

  proposalHashes(): Uint8Array[] {
    const value = this.state.get(PROPOSALS_KEY);
    return value === null ? [] : decodeWith(schemas.hashes, value, 'proposal list');
  }

  addedNames(): string[] {
    const value = this.state.get(ADDED_INTERMEDIATES_KEY);
    return value === null ? [] : decodeWith(schemas.names, value, 'added intermediate list');
  }

  added(name: string): AddedIntermediateRecord | null {
    const value = this.state.get(addedIntermediateKey(name));
    return value === null ? null : decodeAddedIntermediate(value);
  }
}

/** The issuers and the trust bundle in effect, from the genesis and the committed additions. */
export interface IssuerView {
  /** Genesis issuers in name order, then added ones in activation order. */
  issuers(state: ModuleStateReader): readonly CaIssuer[];
  /** The genesis trust bundle with the added intermediates (endorsements verified). */
  bundle(state: ModuleStateReader): TrustBundle;
  /** Latest notBefore and earliest notAfter of the issuers: every leaf must fit inside. */
  issuableWindow(state: ModuleStateReader): { readonly from: number; readonly until: number };
}

/**
 * An `IssuerView` that caches by the list of added names (an added intermediate never changes),
 * so the certificates are parsed once per addition, not once per transaction.
 */
export function createIssuerView(config: CaModuleConfig, falcon?: FalconBackend): IssuerView {
  let cached: {
    key: string;
    issuers: readonly CaIssuer[];
    records: readonly AddedIntermediateRecord[];
    bundle: TrustBundle | null;
    window: { from: number; until: number };
  } | null = null;
  const current = (state: ModuleStateReader): NonNullable<typeof cached> => {
    const reader = new IntermediateStateReader(state);
    const names = reader.addedNames();
    const key = names.join('\n');
    if (cached !== null && cached.key === key) return cached;
    const records = names.map((name) => {
      const record = reader.added(name);
      if (record === null) throw new RangeError(`added intermediate ${name} is missing`);
      return record;
    });
    const issuers = [
      ...config.issuers,
      ...records.map((record): CaIssuer => ({
        name: record.name,
        account: record.account,
        address: validatorAddress(record.account),
        issuer: parseIssuer(record.certificate),
      })),
    ];
    cached = {
      key,
      issuers,
      records,
      bundle: names.length === 0 ? config.bundle : null,
      window: {
        from: Math.max(...issuers.map((i) => i.issuer.notBefore.getTime())),
        until: Math.min(...issuers.map((i) => i.issuer.notAfter.getTime())),
      },
    };
    return cached;
  };
  return {
    issuers: (state) => current(state).issuers,
    issuableWindow: (state) => current(state).window,
    bundle: (state) => {
      const entry = current(state);
      entry.bundle ??= buildTrustBundle(
        {
          cluster: config.bundle.cluster,
          chainId: config.bundle.chainId,
          rootCertificate: config.bundle.root.certificate,
          rootFalconPublicKey: config.bundle.root.falconPublicKey,
          validators: [
            ...config.bundle.validators.map(({ name, certificate, endorsement, account }) => ({
              name,
              certificate,
              endorsement,
              account,
            })),
            ...entry.records.map(({ name, certificate, endorsement, account }) => ({
              name,
              certificate,
              endorsement,
              account,
            })),
          ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
        },
        falcon,
      );
      return entry.bundle;
    },
  };
}

/** Whether `account` holds an intermediate (genesis or added). */
export function holderOf(issuers: readonly CaIssuer[], account: Uint8Array): CaIssuer | undefined {
  const hex = toHex(account);
  return issuers.find((issuer) => toHex(issuer.account) === hex);
}

/** More than two thirds of `holders` (BFT quorum over the current intermediate holders). */
export function approvalQuorumReached(approvals: number, holders: number): boolean {
  return approvals * 3 > holders * 2;
}
