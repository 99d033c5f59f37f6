import type { QueryRequest, QueryResponse } from '../../consensus/app.js';
import { decodeCanonical } from '../../codec/cbor.js';
import { sha256 } from '../../crypto/hash.js';
import { buildTrustBundle, type TrustBundle } from '../ca/bundle.js';
import { encodeCaBody } from './body.js';
import { caQuery, verifiedCaValue } from './client.js';
import { CaStateError } from './errors.js';
import {
  ADDED_INTERMEDIATES_KEY,
  PROPOSALS_KEY,
  addedIntermediateKey,
  decodeAddedIntermediate,
  decodeProposal,
  proposalKey,
  type AddedIntermediateRecord,
  type IntermediateProposal,
} from './intermediates.js';

/**
 * The client side of the governed addition of an intermediate (docs/ca.md, "Adding a
 * validator's intermediate"): the two transaction bodies, and the proven list of open
 * proposals and added intermediates.
 */

/** What approvals name: SHA-256 of the intermediate's DER. */
export function intermediateHash(certificate: Uint8Array): Uint8Array {
  return sha256(certificate);
}

export function caAddIntermediateBody(input: {
  readonly name: string;
  readonly account: Uint8Array;
  readonly certificate: Uint8Array;
  readonly endorsement: Uint8Array;
}): Uint8Array {
  return encodeCaBody({ op: 'add-intermediate', ...input });
}

export function caApproveIntermediateBody(hash: Uint8Array): Uint8Array {
  return encodeCaBody({ op: 'approve-intermediate', hash });
}

type Query = (request: QueryRequest) => QueryResponse | Promise<QueryResponse>;

export interface IntermediateListing {
  /** The height every answer was read at. */
  readonly height: number;
  /** Proposals in proposal order; `expired` once `height` is past `expiresAt`. */
  readonly proposals: readonly (IntermediateProposal & {
    readonly hash: Uint8Array;
    readonly expired: boolean;
  })[];
  /** Added intermediates in activation order (the genesis ones are in the trust bundle). */
  readonly added: readonly AddedIntermediateRecord[];
}

function listOf(value: Uint8Array | null, what: string): unknown[] {
  if (value === null) return [];
  const decoded = decodeCanonical(value);
  if (!Array.isArray(decoded)) {
    throw new CaStateError('CA_CORRUPT_STATE', `the ${what} list does not decode`);
  }
  return decoded;
}

/** Reads the proposals and the added intermediates at one height, every proof checked. */
export async function readIntermediates(query: Query): Promise<IntermediateListing> {
  const first = await query(caQuery('intermediateProposals', new Uint8Array(0)));
  if (first.height === null) {
    throw new CaStateError(
      'CA_CORRUPT_STATE',
      'the answer names no height (nothing committed yet)',
    );
  }
  const height = first.height;
  const hashes = listOf(verifiedCaValue(PROPOSALS_KEY, first), 'proposal');
  const proposals = [];
  for (const hash of hashes) {
    if (!(hash instanceof Uint8Array) || hash.length !== 32) {
      throw new CaStateError('CA_CORRUPT_STATE', 'a proposal hash does not decode');
    }
    const answer = await query(caQuery('intermediateProposal', hash, height));
    const value = verifiedCaValue(proposalKey(hash), answer);
    if (value === null) continue;
    const proposal = decodeProposal(value);
    proposals.push({ ...proposal, hash, expired: height >= proposal.expiresAt });
  }
  const namesAnswer = await query(caQuery('addedIntermediates', new Uint8Array(0), height));
  const names = listOf(verifiedCaValue(ADDED_INTERMEDIATES_KEY, namesAnswer), 'intermediate');
  const added = [];
  for (const name of names) {
    if (typeof name !== 'string') {
      throw new CaStateError('CA_CORRUPT_STATE', 'an intermediate name does not decode');
    }
    const data = new TextEncoder().encode(name);
    const answer = await query(caQuery('addedIntermediate', data, height));
    const value = verifiedCaValue(addedIntermediateKey(name), answer);
    if (value === null) {
      throw new CaStateError('CA_CORRUPT_STATE', `added intermediate ${name} is missing`);
    }
    added.push(decodeAddedIntermediate(value));
  }
  return { height, proposals, added };
}

/**
 * The trust bundle in effect: the genesis bundle with the intermediates added since (whose
 * endorsements `readIntermediates` has checked), in name order.
 */
export function trustBundleInEffect(
  genesis: TrustBundle,
  added: IntermediateListing['added'],
): TrustBundle {
  if (added.length === 0) return genesis;
  return buildTrustBundle({
    cluster: genesis.cluster,
    chainId: genesis.chainId,
    rootCertificate: genesis.root.certificate,
    rootFalconPublicKey: genesis.root.falconPublicKey,
    validators: [...genesis.validators, ...added]
      .map(({ name, certificate, endorsement }) => ({ name, certificate, endorsement }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  });
}
