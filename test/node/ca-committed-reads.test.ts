import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { toHex } from '../../src/crypto/bytes.js';
import { CliError } from '../../src/node/cli-error.js';
import { committedCaCheck, ctTimestamp, waitForPublication } from '../../src/node/cert-tools.js';
import {
  CommittedRootError,
  CommittedRootErrorCode,
  withCommittedRoots,
} from '../../src/node/verified-root.js';
import {
  encodeStateProof,
  stateKeyHash,
  stateLeafHash,
  stateValueHash,
} from '../../src/storage/state-proof.js';
import { caQuery, findPublishedCertificate } from '../../src/trustchain/ca-module/client.js';
import { readIntermediates } from '../../src/trustchain/ca-module/intermediate-client.js';
import {
  ADDED_INTERMEDIATES_KEY,
  PROPOSALS_KEY,
  addedIntermediateKey,
  encodeAddedIntermediate,
} from '../../src/trustchain/ca-module/intermediates.js';
import {
  caStateKey,
  encodeIssuance,
  encodePublished,
  publishedKey,
  requestKey,
} from '../../src/trustchain/ca-module/state.js';
import { CommittedBlocks } from './committed-roots-fixture.js';

/**
 * The `ca` reads of another node (`ca intermediate list|approve`, `cert request|renew`'s wait and
 * chain, `ct proof`) take an answer only when its state root is the one a committed header
 * carries. A lying node roots a proof of a value of its choosing at a root of its own making (a
 * one-leaf tree: root = the leaf hash of (keyHash, valueHash), no siblings): the proof verifies
 * against that root, and only the committed-header check refuses it.
 */

/** A one-key state holding `value` at the module-relative `key`: its root and the leaf. */
function oneLeaf(key: Uint8Array, value: Uint8Array) {
  const leaf = {
    keyHash: stateKeyHash(caStateKey(key)),
    valueHash: stateValueHash(value),
  };
  return { leaf, root: stateLeafHash(leaf.keyHash, leaf.valueHash) };
}

/** An answer proving `value` at `key` against a root made for it (a forgery unless committed). */
function selfRooted(key: Uint8Array, value: Uint8Array, height: number): QueryResponse {
  const { leaf, root } = oneLeaf(key, value);
  return { height, value, stateRoot: root, proof: encodeStateProof({ siblings: [], leaf }) };
}

/** An answer proving `key` absent from the one-key state that holds only `other`. */
function absentBeside(
  other: { key: Uint8Array; value: Uint8Array },
  height: number,
): QueryResponse {
  const { leaf, root } = oneLeaf(other.key, other.value);
  return { height, value: null, stateRoot: root, proof: encodeStateProof({ siblings: [], leaf }) };
}

const pathOf = (name: Parameters<typeof caQuery>[0]): string =>
  caQuery(name, new Uint8Array(0)).path;

function refused(code: CommittedRootErrorCode, height: number | null) {
  return (error: unknown): boolean => {
    assert.ok(
      error instanceof CommittedRootError,
      `expected a CommittedRootError: ${String(error)}`,
    );
    assert.equal(error.code, code, error.message);
    assert.equal(error.height, height);
    return true;
  };
}

const forgedIntermediate = encodeAddedIntermediate({
  name: 'mallory',
  account: new Uint8Array(32).fill(7),
  certificate: new Uint8Array([1, 2, 3]),
  endorsement: new Uint8Array([4, 5, 6]),
  proposedAt: 3,
  activatedAt: 4,
  approvals: ['node-1', 'node-2', 'node-3'],
});

describe('ca reads of another node are proven to committed roots', () => {
  let node: CommittedBlocks;
  /** The only key of the honest state at height 10: no open proposal. */
  const proposals = { key: PROPOSALS_KEY, value: encodeCanonical([]) };
  before(async () => {
    node = await CommittedBlocks.create(4);
    await node.commit(10, oneLeaf(proposals.key, proposals.value).root);
  });

  /** A node API client of `node` whose answers `answer` makes up. */
  const clientOf = (answer: (request: QueryRequest) => QueryResponse): NodeRpcClient =>
    ({
      getBlock: (height: number) => node.getBlock(height),
      validatorUpdates: (from: number, to: number) => node.validatorUpdates(from, to),
      query: (request: QueryRequest) => Promise.resolve(answer(request)),
    }) as unknown as NodeRpcClient;

  /** Lists no proposal (true, proven to block 10's root), then `ints` as `addedAnswer` says. */
  const lyingAboutInts = (addedAnswer: () => QueryResponse) =>
    clientOf((request) => {
      if (request.path === pathOf('intermediateProposals')) {
        return selfRooted(proposals.key, proposals.value, 10);
      }
      if (request.path === pathOf('addedIntermediates')) return addedAnswer();
      if (request.path === pathOf('addedIntermediate')) {
        return selfRooted(addedIntermediateKey('mallory'), forgedIntermediate, 10);
      }
      throw new Error(`unexpected query ${request.path}`);
    });

  it('readIntermediates: an honest listing passes the check', async () => {
    const plain = lyingAboutInts(() => absentBeside(proposals, 10));
    const client = withCommittedRoots(plain, node.chain.genesis);
    const listing = await readIntermediates(
      (request) => client.query(request),
      committedCaCheck(client),
    );
    assert.deepEqual(listing, { height: 10, proposals: [], added: [] });
  });

  it('readIntermediates: a self-rooted "ints" entry is refused (ROOT_MISMATCH)', async () => {
    const forgedNames = encodeCanonical(['mallory']);
    const plain = lyingAboutInts(() => selfRooted(ADDED_INTERMEDIATES_KEY, forgedNames, 10));
    // The proofs alone verify: without the check the never-approved intermediate is listed.
    const unchecked = await readIntermediates((request) => plain.query(request));
    assert.deepEqual(
      unchecked.added.map((record) => record.name),
      ['mallory'],
    );
    const client = withCommittedRoots(plain, node.chain.genesis);
    await assert.rejects(
      readIntermediates((request) => client.query(request), committedCaCheck(client)),
      refused(CommittedRootErrorCode.ROOT_MISMATCH, 10),
    );
  });

  it('readIntermediates: every read is pinned to the first answer height (ROOT_HEIGHT_MISMATCH)', async () => {
    // Block 11 really commits a state whose "ints" names the intermediate: the listing of
    // height 10 must not take it.
    const names = encodeCanonical(['mallory']);
    await node.commit(11, oneLeaf(ADDED_INTERMEDIATES_KEY, names).root);
    const plain = lyingAboutInts(() => selfRooted(ADDED_INTERMEDIATES_KEY, names, 11));
    const client = withCommittedRoots(plain, node.chain.genesis);
    await assert.rejects(
      readIntermediates((request) => client.query(request), committedCaCheck(client)),
      refused(CommittedRootErrorCode.HEIGHT_MISMATCH, 11),
    );
  });

  it('the node-layer check needs a client that checks roots', () => {
    const plain = lyingAboutInts(() => absentBeside(proposals, 10));
    assert.throws(
      () => committedCaCheck(plain),
      (error: unknown) => error instanceof CliError && /checks state roots/.test(error.message),
    );
  });

  const txHash = randomBytes(32);
  const serial = randomBytes(16);
  const issuance = encodeIssuance({
    account: new Uint8Array(32).fill(1),
    request: new Uint8Array([1]),
    height: 9,
    lifetimeSeconds: 86_400,
    serial,
    renews: null,
    validatedAt: null,
  });

  it('waitForPublication: a self-rooted issuance record is refused (ROOT_MISMATCH)', async () => {
    const plain = clientOf((request) => {
      if (request.path === pathOf('request')) return selfRooted(requestKey(txHash), issuance, 10);
      // Not published: absent beside the issuance record (consistent with the forged root).
      return absentBeside({ key: requestKey(txHash), value: issuance }, 10);
    });
    // Unchecked, the forged record reads as a pending issuance.
    const unchecked = await findPublishedCertificate((request) => plain.query(request), txHash);
    assert.equal(unchecked.status, 'pending');
    const client = withCommittedRoots(plain, node.chain.genesis);
    await assert.rejects(
      waitForPublication(client, toHex(txHash), 60_000),
      refused(CommittedRootErrorCode.ROOT_MISMATCH, 10),
    );
  });

  it('findPublishedCertificate: the certificate and revocation are read at the request answer height', async () => {
    // Block 12 truly commits the issuance record; a certificate answered from another height is
    // refused, whatever it proves.
    await node.commit(12, oneLeaf(requestKey(txHash), issuance).root);
    const asked: (number | undefined)[] = [];
    const plain = clientOf((request) => {
      if (request.path === pathOf('request')) return selfRooted(requestKey(txHash), issuance, 12);
      asked.push(request.height);
      return absentBeside({ key: requestKey(txHash), value: issuance }, 13);
    });
    const client = withCommittedRoots(plain, node.chain.genesis);
    await assert.rejects(
      waitForPublication(client, toHex(txHash), 60_000),
      refused(CommittedRootErrorCode.HEIGHT_MISMATCH, 13),
    );
    assert.deepEqual(asked, [12]);
  });

  it('ctTimestamp: a self-rooted published record is refused (ROOT_MISMATCH)', async () => {
    const record = encodePublished({ time: 1_700_000_000_000, serials: [serial] });
    const plain = clientOf(() => selfRooted(publishedKey(5), record, 10));
    const client = withCommittedRoots(plain, node.chain.genesis);
    await assert.rejects(
      ctTimestamp(client, 5, 10),
      refused(CommittedRootErrorCode.ROOT_MISMATCH, 10),
    );
  });
});
