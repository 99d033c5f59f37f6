import type { QueryRequest, QueryResponse } from '../../consensus/app.js';
import { decodeCanonical } from '../../codec/cbor.js';
import { buildTrustBundle, type TrustBundle } from '../ca/bundle.js';
import { encodeCaBody } from './body.js';
import { caQuery, readCaValue, type CaAnswerCheck } from './client.js';
import { CaStateError } from './errors.js';
import {
  ADDED_INTERMEDIATES_KEY,
  PROPOSALS_KEY,
  addedIntermediateKey,
  decodeAddedIntermediate,
  decodeProposal,
  proposalHash,
  proposalKey,
  type AddedIntermediateRecord,
  type IntermediateProposal,
} from './intermediates.js';

/**
 * The client side of the governed addition of an intermediate (docs/ca.md, "Adding a
 * validator's intermediate"): the two transaction bodies, and the proven list of open
 * proposals and added intermediates.
 */

/** What approvals name: the proposal hash of the intermediate and its node key (`proposalHash`). */
export function intermediateHash(certificate: Uint8Array, account: Uint8Array): Uint8Array {
  return proposalHash(certificate, account);
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

/**
 * Reads the proposals and the added intermediates at one height: the first answer's (every
 * later read is pinned to it and refused if answered at another). Every answer's state proof is
 * checked against the root it names and then given to `check`. A caller reading another node
 * passes the node layer's `committedCaCheck` (src/node/cert-tools.ts), which refuses a root the
 * validator quorum did not commit: without it a lying node could list an intermediate that was
 * never approved (self-rooted proofs verify). Without a check the listing is the node's word.
 */
export async function readIntermediates(
  query: Query,
  check?: CaAnswerCheck,
): Promise<IntermediateListing> {
  const first = await readCaValue(
    query,
    caQuery('intermediateProposals', new Uint8Array(0)),
    PROPOSALS_KEY,
    check,
  );
  if (first.height === null) {
    throw new CaStateError(
      'CA_CORRUPT_STATE',
      'the answer names no height (nothing committed yet)',
    );
  }
  const height = first.height;
  const read = async (
    path: 'intermediateProposal' | 'addedIntermediates' | 'addedIntermediate',
    data: Uint8Array,
    key: Uint8Array,
  ) => (await readCaValue(query, caQuery(path, data, height), key, check)).value;
  const hashes = listOf(first.value, 'proposal');
  const proposals = [];
  for (const hash of hashes) {
    if (!(hash instanceof Uint8Array) || hash.length !== 32) {
      throw new CaStateError('CA_CORRUPT_STATE', 'a proposal hash does not decode');
    }
    const value = await read('intermediateProposal', hash, proposalKey(hash));
    if (value === null) continue;
    const proposal = decodeProposal(value);
    proposals.push({ ...proposal, hash, expired: height >= proposal.expiresAt });
  }
  const names = listOf(
    await read('addedIntermediates', new Uint8Array(0), ADDED_INTERMEDIATES_KEY),
    'intermediate',
  );
  const added = [];
  for (const name of names) {
    if (typeof name !== 'string') {
      throw new CaStateError('CA_CORRUPT_STATE', 'an intermediate name does not decode');
    }
    const value = await read(
      'addedIntermediate',
      new TextEncoder().encode(name),
      addedIntermediateKey(name),
    );
    if (value === null) {
      throw new CaStateError('CA_CORRUPT_STATE', `added intermediate ${name} is missing`);
    }
    added.push(decodeAddedIntermediate(value));
  }
  return { height, proposals, added };
}

/**
 * The trust bundle in effect: the genesis bundle with the intermediates added since, in name
 * order. `buildTrustBundle` checks each one's root signature and root FALCON endorsement; that
 * the quorum approved it is only as good as the listing: `readIntermediates` with a check of
 * committed roots.
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
      .map(({ name, certificate, endorsement, account }) => ({
        name,
        certificate,
        endorsement,
        account,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  });
}
