import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import { parseCertificate, type ParsedCertificate } from '../../src/crypto/x509.js';
import { issueGenesisCertificate } from '../../src/node/ca-genesis.js';
import { generateNodeIdentity } from '../../src/node/dev-ca.js';
import { provenLeafRevocation } from '../../src/node/operator-trust.js';
import type { CommittedBlockSource } from '../../src/node/verified-root.js';
import { encodeStateProof, stateKeyHash, stateValueHash } from '../../src/storage/state-proof.js';
import {
  EMPTY_REF,
  proveStateKey,
  updateStateTree,
  type NodeRef,
  type StateNode,
} from '../../src/storage/state-tree.js';
import { readTbs, splitCertificate } from '../../src/trustchain/ca/certificate.js';
import { caQuery } from '../../src/trustchain/ca-module/client.js';
import {
  caStateKey,
  certificateKey,
  encodeCertificateRecord,
  encodeRevocation,
  revocationKey,
} from '../../src/trustchain/ca-module/state.js';
import { CLUSTER, createTestCa } from '../trustchain/ca/fixtures.js';
import { CommittedBlocks } from './committed-roots-fixture.js';

/**
 * The operator's revocation check (operator-trust.ts `provenLeafRevocation`) asks every node
 * but the one the leaf names, and that node only when no other proves an answer: its key holder
 * can prove the leaf's state from before a revocation. One node that lies about its block must
 * not be able to take the honest nodes' proofs down with it (their checks share verified
 * headers, never a check under way) and so hand the decision to the key holder.
 */

/** Committed CA state kept in memory: its roots and state proofs. */
class CaState {
  private readonly nodes = new Map<number, StateNode>();
  private nextId = 1;

  read(id: number): StateNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no state node ${id}`);
    return node;
  }

  /** The root after setting module-relative `key` to `value` on top of `root`. */
  set(root: NodeRef, key: Uint8Array, value: Uint8Array): NodeRef {
    const update = updateStateTree(
      this,
      root,
      [{ keyHash: stateKeyHash(caStateKey(key)), valueHash: stateValueHash(value) }],
      this.nextId,
    );
    for (const created of update.created) this.nodes.set(created.id, created.node);
    this.nextId += update.created.length;
    return update.root;
  }

  /** A node's answer for module-relative `key` in the state `root` holds at `height`. */
  answer(root: NodeRef, height: number, key: Uint8Array, value: Uint8Array | null): QueryResponse {
    const proof = proveStateKey(this, root, stateKeyHash(caStateKey(key)));
    return { height, value, stateRoot: root.hash, proof: encodeStateProof(proof) };
  }
}

describe('provenLeafRevocation: a lying reader does not hand the answer to the key holder', () => {
  let chain: CommittedBlocks;
  let leaf: ParsedCertificate;
  let issuer: ParsedCertificate;
  let answers: (height: number, request: QueryRequest) => QueryResponse;

  before(async () => {
    const ca = await createTestCa(['val-a']);
    const validator = ca.validators['val-a']!;
    const [der, intermediate] = issueGenesisCertificate({
      issuer: {
        certificate: validator.issuer.certificate,
        privateKey: validator.keys.ecdsa.privateKey,
      },
      chainId: CLUSTER,
      role: 'node',
      name: 'holder',
      keys: await generateNodeIdentity(ca.falcon),
      validityDays: 1,
      now: new Date(),
    });
    leaf = parseCertificate(der!);
    issuer = parseCertificate(intermediate!);
    const serial = readTbs(splitCertificate(der!).tbs).serial;
    const record = encodeCertificateRecord({
      der: der!,
      txHash: new Uint8Array(32),
      issuer: 'val-a',
      publishedAt: 3,
    });
    const revocation = encodeRevocation({ reason: 1, height: 8, time: 1 });
    // Height 5: the leaf issued; height 9: revoked for key compromise.
    const state = new CaState();
    const issued = state.set(EMPTY_REF, certificateKey(serial), record);
    const revoked = state.set(issued, revocationKey(serial), revocation);
    chain = await CommittedBlocks.create(4);
    await chain.commit(5, issued.hash);
    await chain.commit(9, revoked.hash);
    const certificatePath = caQuery('certificate', serial).path;
    answers = (height, request) => {
      const root = height === 9 ? revoked : issued;
      if (request.path === certificatePath) {
        return state.answer(root, height, certificateKey(serial), record);
      }
      return state.answer(root, height, revocationKey(serial), height === 9 ? revocation : null);
    };
  });

  it("an honest reader's proof of the revocation counts though another reader lied about its block first", async () => {
    const asked = { liar: 0, honest: 0, holder: 0 };
    let liarAsksForBlock!: () => void;
    const liarAsked = new Promise<void>((resolve) => (liarAsksForBlock = resolve));
    let honestAnswered!: () => void;
    const answered = new Promise<void>((resolve) => (honestAnswered = resolve));
    const reader = (
      name: keyof typeof asked,
      height: number,
      blocks: CommittedBlockSource,
      gate?: Promise<void>,
    ): NodeRpcClient =>
      ({
        query: async (request: QueryRequest) => {
          asked[name]++;
          await gate;
          const response = answers(height, request);
          if (name === 'honest') honestAnswered();
          return response;
        },
        getBlock: blocks.getBlock.bind(blocks),
        validatorUpdates: blocks.validatorUpdates.bind(blocks),
      }) as unknown as NodeRpcClient;
    const clients: Record<string, NodeRpcClient> = {
      // Answers with the genuine revoked state, but sends a block that does not decode, and
      // only once the honest reader's answer is in (its check started after the liar's).
      liar: reader('liar', 9, {
        getBlock: async (height) => {
          liarAsksForBlock();
          await answered;
          await nextTurn();
          return { height, block: Uint8Array.of(1, 2, 3), commit: Uint8Array.of(4) };
        },
        validatorUpdates: () => Promise.resolve([]),
      }),
      honest: reader('honest', 9, chain, liarAsked),
      // The leaf's own node proves the state from before the revocation.
      holder: reader('holder', 5, chain),
    };
    const check = provenLeafRevocation({
      genesis: chain.chain.genesis,
      client: (name) => clients[name]!,
      readers: ['liar', 'honest', 'holder'],
    });
    const answer = await check({ certificate: leaf, issuer, depth: 0 });
    assert.deepEqual(answer, { status: 'revoked', reason: 'keyCompromise' });
    assert.equal(asked.holder, 0, 'the key holder was not asked: another node proved an answer');
    assert.equal(asked.liar, 1);
  });
});
