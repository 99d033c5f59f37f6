import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { genesisValidatorSet } from '../../../src/consensus/genesis.js';
import type { Block, BlockHeader } from '../../../src/consensus/types.js';
import { decodeQuorumCertificate, encodeQuorumCertificate } from '../../../src/consensus/wire.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { emptyRoot, leafHash } from '../../../src/crypto/merkle.js';
import { parseCertificate } from '../../../src/crypto/x509.js';
import {
  CertificateProofError,
  CertificateProofErrorCode as Code,
  MAX_CERTIFICATE_PROOF_BYTES,
  certificateProofToJson,
  parseCertificateProof,
  verifyCertificateProof,
  type CertificateProof,
} from '../../../src/trustchain/ca-module/certificate-proof.js';
import {
  caQuery,
  caRequestBody,
  caRevokeBody,
  certificateLogLeaf,
  decodeTreeHead,
} from '../../../src/trustchain/ca-module/index.js';
import { decodeCertificateRecord } from '../../../src/trustchain/ca-module/state.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import { encodeCertificateChain, openCtLog, type CtLog } from '../../../src/trustchain/ct/index.js';
import { makeTestChain, signCommit, type TestChain } from '../../consensus/pos-fixture.js';
import { generateKey } from '../ca/fixtures.js';
import { tempDatabase } from '../ct/fixtures.js';
import {
  GRANTED_ZONE,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
} from './fixture.js';

/**
 * The certificate proof (`cert verify --proof`): a quorum checkpoint, the certificate's record
 * and revocation under the same header and its CT audit path, verified with the genesis alone;
 * each part tampered with is refused with its own code, garbage never crashes the parser.
 */

function requestBody(name: string): Uint8Array {
  return caRequestBody({
    profile: 'service',
    csr: createCsr({ privateKey: generateKey('p256') }),
    dnsNames: [name],
  });
}

/** The parts of the JSON form the tampering tests edit. */
interface ProofJson {
  checkpoint: { commit: string; header: { appStateRoot: string } };
  certificateRecord: { value: string | null };
  revocation: { value: string | null };
  log: { leafIndex: number; timestamp: number; auditPath: string[] };
  publishedAt: number;
  issuer: string;
}

function flipHex(hex: string, at: number): string {
  const digit = hex[at] === '0' ? '1' : '0';
  return hex.slice(0, at) + digit + hex.slice(at + 1);
}

function serialOf(der: Uint8Array): Uint8Array {
  return Uint8Array.from(Buffer.from(parseCertificate(der).serialNumber, 'hex'));
}

function refusedWith(code: Code, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof CertificateProofError, String(error));
    assert.equal(error.code, code, error.message);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return true;
  };
}

describe('certificate proof: consensus and transparency, offline', () => {
  let fixture: CaFixture;
  let node: CaNode;
  let chain: TestChain;
  let log: CtLog;
  let certificates: Uint8Array[];
  let proofA: CertificateProof;
  let proofB: CertificateProof;
  const cleanups: (() => void)[] = [];

  /** What ca-node.ts appends to its local log for block `height`. */
  function appendLikeTheNode(height: number): void {
    const published = node.state().published(height);
    if (published === null) return;
    log.appendBatch(
      published.serials.map((serial) => ({
        leaf: certificateLogLeaf(node.state().certificate(serial)!.der, published.time),
        extraData: encodeCertificateChain([]),
      })),
      published.time,
    );
  }

  /** The proof of `der` at the node's latest height, under a header the test chain commits. */
  async function proofOf(der: Uint8Array): Promise<CertificateProof> {
    const serial = serialOf(der);
    const head = node.node.app.query(caQuery('treeHead', new Uint8Array(0)));
    const record = node.node.app.query(caQuery('certificate', serial));
    const revocation = node.node.app.query(caQuery('revocation', serial));
    assert.ok(head.proof && record.proof && revocation.proof && head.height !== null);
    assert.equal(record.height, head.height);
    assert.equal(revocation.height, head.height);
    const header: BlockHeader = {
      chainId: chain.genesis.chainId,
      height: head.height,
      time: chain.genesis.genesisTime + head.height * 1000,
      parentHash: randomBytes(32),
      transactionsRoot: emptyRoot(),
      evidenceRoot: randomBytes(32),
      lastCommitHash: randomBytes(32),
      appStateRoot: head.stateRoot,
      validatorsHash: genesisValidatorSet(chain.genesis).hash,
      proposer: chain.validators[0]!.address,
      consensusProof: new Uint8Array(0),
    };
    const commit = await signCommit(chain, { header } as unknown as Block, {
      signers: chain.validators.slice(0, 3),
    });
    const { publishedAt } = decodeCertificateRecord(record.value!);
    const timestamp = node.state().published(publishedAt)!.time;
    const size = decodeTreeHead(head.value).range.size;
    const leafIndex = log.findLeafIndex(leafHash(certificateLogLeaf(der, timestamp)), size);
    return {
      chainId: chain.genesis.chainId,
      serial,
      certificateSha256: sha256(der),
      checkpoint: { header, commit, value: head.value, proof: head.proof },
      record: { value: record.value, proof: record.proof },
      revocation: { value: revocation.value, proof: revocation.proof },
      log: { leafIndex, timestamp, auditPath: log.inclusionProof(leafIndex, size) },
    };
  }

  before(async () => {
    fixture = await createCaFixture();
    node = await fixture.openCaNode();
    chain = await makeTestChain(4);
    const store = tempDatabase();
    cleanups.push(store.cleanup);
    log = openCtLog(store.db, { origin: 'test/ct/log' });
    const requested = node.block(
      [
        caTx(fixture.operator, requestBody(`a.${GRANTED_ZONE}`)),
        caTx(fixture.operator, requestBody(`b.${GRANTED_ZONE}`)),
      ],
      'val-b',
    );
    assert.ok(requested.txResults.every((result) => result.code === 0));
    const height = node.node.store.blocks.latestHeight() as number;
    const published = await publication(fixture, node, height, 'val-b');
    node.block([publishTx(fixture, 'val-b', published.tx)]);
    for (let h = 1; h <= height + 1; h++) appendLikeTheNode(h);
    certificates = [...published.certificates];
    proofA = await proofOf(certificates[0]!);
    proofB = await proofOf(certificates[1]!);
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) cleanup();
    await node?.close();
  });

  it('verifies with the genesis alone, also after its JSON round trip', () => {
    const der = certificates[0]!;
    const direct = verifyCertificateProof(der, proofA, chain.genesis, chain.falcon);
    const text = certificateProofToJson(proofA);
    const again = verifyCertificateProof(
      der,
      parseCertificateProof(text),
      chain.genesis,
      chain.falcon,
    );
    assert.deepEqual(again, direct);
    assert.equal(again.issuer, 'val-b');
    assert.equal(again.serial, toHex(serialOf(der)));
    assert.equal(again.checkpoint.signers.length, 3);
    assert.equal(again.checkpoint.falconSignatures, 3);
    assert.equal(again.leafIndex, proofA.log.leafIndex);
    const json = JSON.parse(text) as { publishedAt: number; issuer: string };
    assert.equal(json.publishedAt, again.publishedAt);
    assert.equal(json.issuer, 'val-b');
  });

  /** `proofA`'s JSON with `edit` applied, parsed and verified for certificate A. */
  function verifyEdited(edit: (json: ProofJson) => void, der = certificates[0]!) {
    const json = JSON.parse(certificateProofToJson(proofA)) as ProofJson;
    edit(json);
    return verifyCertificateProof(
      der,
      parseCertificateProof(JSON.stringify(json)),
      chain.genesis,
      chain.falcon,
    );
  }

  it('a forged commit signature byte is refused: the commit is the consensus proof', () => {
    const commit = decodeQuorumCertificate(
      Buffer.from(JSON.parse(certificateProofToJson(proofA)).checkpoint.commit, 'hex'),
    );
    const [first, ...rest] = commit.precommits;
    const signature = Uint8Array.from(first!.signature);
    signature[10]! ^= 1;
    const forged = { ...commit, precommits: [{ ...first!, signature }, ...rest] };
    assert.throws(
      () =>
        verifyEdited((j) => void (j.checkpoint.commit = toHex(encodeQuorumCertificate(forged)))),
      refusedWith(Code.COMMIT_INVALID, /does not certify block/),
    );
    const pq = Uint8Array.from(first!.pqSignature!);
    pq[20]! ^= 1;
    const badFalcon = { ...commit, precommits: [{ ...first!, pqSignature: pq }, ...rest] };
    assert.throws(
      () =>
        verifyEdited((j) => void (j.checkpoint.commit = toHex(encodeQuorumCertificate(badFalcon)))),
      refusedWith(Code.COMMIT_INVALID),
    );
    // Another header (state root) is another block, which the commit does not certify.
    assert.throws(
      () =>
        verifyEdited(
          (j) =>
            void (j.checkpoint.header.appStateRoot = flipHex(j.checkpoint.header.appStateRoot, 3)),
        ),
      refusedWith(Code.COMMIT_INVALID),
    );
  });

  it('a publication height or issuer other than the proven record is refused', () => {
    assert.throws(
      () => verifyEdited((j) => void (j.issuer = 'node-9')),
      refusedWith(Code.MALFORMED),
    );
    assert.throws(
      () => verifyEdited((j) => void (j.publishedAt = j.publishedAt + 1)),
      refusedWith(Code.MALFORMED),
    );
  });

  it('a tampered audit path, leaf index or timestamp is refused: not included', () => {
    assert.ok(proofA.log.auditPath.length > 0, 'the fixture log has more than one entry');
    assert.throws(
      () => verifyEdited((j) => void (j.log.auditPath[0] = flipHex(j.log.auditPath[0]!, 7))),
      refusedWith(Code.NOT_INCLUDED, /do not lead to the quorum tree head/),
    );
    assert.throws(
      () => verifyEdited((j) => void (j.log.leafIndex = proofB.log.leafIndex)),
      refusedWith(Code.NOT_INCLUDED),
    );
    assert.throws(
      () => verifyEdited((j) => void (j.log.leafIndex = 1_000_000)),
      refusedWith(Code.NOT_INCLUDED),
    );
    assert.throws(
      () => verifyEdited((j) => void (j.log.timestamp += 1)),
      refusedWith(Code.NOT_INCLUDED),
    );
    assert.throws(
      () => verifyEdited((j) => void j.log.auditPath.pop()),
      refusedWith(Code.NOT_INCLUDED),
    );
  });

  it("another certificate's proof is refused as such", () => {
    const [a, b] = certificates as [Uint8Array, Uint8Array];
    assert.throws(
      () => verifyCertificateProof(a, proofB, chain.genesis, chain.falcon),
      refusedWith(Code.OTHER_CERTIFICATE, /the proof is for certificate/),
    );
    // B's proof relabelled with A's serial: the DER hash still names B.
    assert.throws(
      () =>
        verifyCertificateProof(
          a,
          { ...proofB, serial: proofA.serial },
          chain.genesis,
          chain.falcon,
        ),
      refusedWith(Code.OTHER_CERTIFICATE, /another certificate with serial/),
    );
    // Fully relabelled: B's record does not open A's key.
    assert.throws(
      () =>
        verifyCertificateProof(
          a,
          { ...proofB, serial: proofA.serial, certificateSha256: sha256(a) },
          chain.genesis,
          chain.falcon,
        ),
      refusedWith(Code.STATE_PROOF_INVALID, /certificate record/),
    );
    // A's record value swapped for B's under A's proof, and an absent record.
    assert.throws(
      () =>
        verifyCertificateProof(
          a,
          { ...proofA, record: proofB.record },
          chain.genesis,
          chain.falcon,
        ),
      refusedWith(Code.STATE_PROOF_INVALID),
    );
    assert.throws(
      () => verifyEdited((j) => void (j.certificateRecord.value = null)),
      refusedWith(Code.STATE_PROOF_INVALID),
    );
    assert.throws(
      () => verifyEdited((j) => void (j.revocation.value = '00')),
      refusedWith(Code.STATE_PROOF_INVALID, /revocation/),
    );
    assert.ok(verifyCertificateProof(b, proofB, chain.genesis, chain.falcon));
  });

  it('a wrong genesis is refused: another chain, or another validator set', async () => {
    const der = certificates[0]!;
    assert.throws(
      () =>
        verifyCertificateProof(der, proofA, { ...chain.genesis, chainId: 'other' }, chain.falcon),
      refusedWith(Code.WRONG_CHAIN, /not "other"/),
    );
    const other = await makeTestChain(2);
    assert.throws(
      () =>
        verifyCertificateProof(
          der,
          proofA,
          { ...other.genesis, chainId: chain.genesis.chainId },
          chain.falcon,
        ),
      refusedWith(Code.VALIDATOR_SET_CHANGED),
    );
  });

  it('malformed files are refused with MALFORMED, never a crash', () => {
    const text = certificateProofToJson(proofA);
    const malformed = [
      '',
      '{',
      '[]',
      'null',
      JSON.stringify({ ...JSON.parse(text), version: 2 }),
      JSON.stringify({ ...JSON.parse(text), extra: 1 }),
      JSON.stringify({ ...JSON.parse(text), serial: 'ZZ' }),
      JSON.stringify({ ...JSON.parse(text), checkpoint: { format: 'x' } }),
      JSON.stringify({
        ...JSON.parse(text),
        log: { ...JSON.parse(text).log, auditPath: Array(65).fill('00'.repeat(32)) },
      }),
      JSON.stringify({ ...JSON.parse(text), log: { ...JSON.parse(text).log, leafIndex: -1 } }),
      JSON.stringify({
        ...JSON.parse(text),
        certificateRecord: { value: '00'.repeat(70_000), proof: '' },
      }),
      ' '.repeat(MAX_CERTIFICATE_PROOF_BYTES + 1),
    ];
    for (const input of malformed) {
      assert.throws(
        () => parseCertificateProof(input),
        refusedWith(Code.MALFORMED),
        input.slice(0, 80),
      );
    }
    // A record that is no record, under a proof that does not open it.
    assert.throws(
      () => verifyEdited((j) => void (j.certificateRecord.value = 'ff')),
      refusedWith(Code.STATE_PROOF_INVALID),
    );
    // Random one-character mutations: a typed refusal or a valid proof, nothing else.
    for (let i = 0; i < 60; i++) {
      const at = Math.floor(Math.random() * text.length);
      const mutated = text.slice(0, at) + '0123456789abcdef"{}[],:x'[i % 24] + text.slice(at + 1);
      try {
        verifyCertificateProof(
          certificates[0]!,
          parseCertificateProof(mutated),
          chain.genesis,
          chain.falcon,
        );
      } catch (error) {
        assert.ok(error instanceof CertificateProofError, `${String(error)} at ${at}`);
      }
    }
  });

  it('a revoked certificate is refused as of the proof block', async () => {
    const der = certificates[1]!;
    const revoked = node.block([caTx(fixture.operator, caRevokeBody(serialOf(der), 4))]);
    assert.ok(
      revoked.txResults.every((result) => result.code === 0),
      JSON.stringify(revoked.txResults),
    );
    const proof = await proofOf(der);
    assert.throws(
      () => verifyCertificateProof(der, proof, chain.genesis, chain.falcon),
      refusedWith(Code.REVOKED, /revoked at height \d+ \(reason 4\)/),
    );
    // A is still fine at the new height.
    assert.ok(
      verifyCertificateProof(
        certificates[0]!,
        await proofOf(certificates[0]!),
        chain.genesis,
        chain.falcon,
      ),
    );
  });
});
