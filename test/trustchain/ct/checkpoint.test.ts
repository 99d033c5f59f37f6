import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { concatBytes, fromBase64, toBase64, toHex } from '../../../src/crypto/bytes.js';
import { ed25519KeyPairFromSeed, ed25519Sign } from '../../../src/crypto/ed25519.js';
import {
  createFalcon,
  type FalconBackend,
  type FalconKeyPair,
} from '../../../src/crypto/falcon.js';
import { sha256 } from '../../../src/crypto/hash.js';
import {
  CtError,
  CtErrorCode,
  MAX_NOTE_SIGNATURES,
  addCosignatures,
  detectSplitView,
  falconKeyId,
  formatCheckpointBody,
  formatSignedNote,
  isValidKeyName,
  noteKeyId,
  parseCheckpointBody,
  parseSignedNote,
  rfc6962LogId,
  signCheckpointEd25519,
  signTreeHeadRfc6962,
  treeHeadSignatureInput,
  verifyCheckpoint,
  verifySignatures,
  verifySplitViewEvidence,
  openCtLog,
  type CheckpointVerifierSet,
} from '../../../src/trustchain/ct/index.js';
import {
  ORIGIN,
  cosign,
  falconLine,
  makeLogKey,
  makeValidators,
  verifierSet,
  x509Entry,
} from './fixtures.js';

function rejects(fn: () => unknown, code: CtErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CtError, `expected CtError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

const root = sha256(Uint8Array.of(1, 2, 3));
const body = formatCheckpointBody({ origin: ORIGIN, size: 42, root });

/** Flips one bit inside the signature (after the key ID) of signature line `line`. */
function tamperLine(note: string, line: number): string {
  const parsed = parseSignedNote(note);
  const signatures = parsed.signatures.map((s, i) => {
    if (i !== line) return s;
    const signature = s.signature.slice();
    signature[signature.length - 5] = (signature[signature.length - 5] as number) ^ 1;
    return { ...s, signature };
  });
  return formatSignedNote(parsed.text, signatures);
}

describe('signed notes', () => {
  it('reproduces the Ed25519 signed note of Go sumdb/note (TestSign known answer)', () => {
    // golang.org/x/mod/sumdb/note/note_test.go: PRIVATE+KEY+PeterNeumann+c74f20a3+AYEK... is
    // algorithm byte 0x01 followed by the Ed25519 seed.
    const seed = fromBase64('AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz').slice(1);
    const publicKey = fromBase64('ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW').slice(1);
    assert.equal(noteKeyId('PeterNeumann', 0x01, publicKey), 0xc74f20a3);
    const text =
      "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const signature = ed25519Sign(
      new TextEncoder().encode(text),
      ed25519KeyPairFromSeed(seed).privateKey,
    );
    assert.equal(
      formatSignedNote(text, [{ name: 'PeterNeumann', keyId: 0xc74f20a3, signature }]),
      `${text}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
    );
  });

  it('refuses malformed notes', () => {
    const good = cosign(body, makeValidators([1]));
    const bad = [
      body,
      `${body}\n`,
      `${body}\n— name\n`,
      `${body}\n— name AAAA\n`,
      `${body}\n— bad name AAAAAAAA\n`,
      `${body}\n- name AAAAAAAA\n`,
      `${body}\n— name AAAAAAA*\n`,
      good.slice(0, -1),
      good.replace(ORIGIN, `${ORIGIN}\u0001`),
      // C1 controls (CSI U+009B starts a terminal escape) and bidi controls in a key name.
      `${body}\n— x\u009b2J AAAAAAAA\n`,
      `${body}\n— x\u0085y AAAAAAAA\n`,
      `${body}\n— x\u202eEVIL AAAAAAAA\n`,
      `${body}\n— x\u2066y AAAAAAAA\n`,
      `${body}\n— x\u200fy AAAAAAAA\n`,
      `${body}\n— x\u007fy AAAAAAAA\n`,
      42,
    ];
    for (const note of bad) rejects(() => parseSignedNote(note), CtErrorCode.MALFORMED_NOTE);
    const many = Array.from({ length: MAX_NOTE_SIGNATURES + 1 }, (_, i) => ({
      name: `k${i}`,
      keyId: i,
      signature: Uint8Array.of(1),
    }));
    rejects(() => parseSignedNote(formatSignedNote(body, many)), CtErrorCode.TOO_MANY_SIGNATURES);
  });

  it('key names refuse control and bidi characters, not other Unicode', () => {
    for (const name of [
      'a\u0080',
      'a\u009b',
      'a\u202a',
      'a\u202e',
      'a\u2066',
      'a\u2069',
      'a\u061c',
    ]) {
      assert.equal(isValidKeyName(name), false, JSON.stringify(name));
      rejects(
        () => signCheckpointEd25519(body, name, makeValidators([1])[0]!.privateKey),
        CtErrorCode.MALFORMED_NOTE,
      );
    }
    for (const name of ['example.com/log', 'émoji-✓', 'a\u00a9b']) {
      assert.equal(isValidKeyName(name), true, name);
    }
  });

  it('parses only canonical three-line checkpoint bodies', () => {
    assert.deepEqual(parseCheckpointBody(body), { origin: ORIGIN, size: 42, root });
    for (const text of [
      `${ORIGIN}\n042\n${toBase64(root)}\n`,
      `${ORIGIN}\n-1\n${toBase64(root)}\n`,
      `${ORIGIN}\n1\n${toBase64(root)}`,
      `${ORIGIN}\n1\n${toBase64(root)}\nextension\n`,
      `${ORIGIN}\n1\n${toBase64(root.slice(1))}\n`,
      `${ORIGIN}\n99999999999999999\n${toBase64(root)}\n`,
      `\n1\n${toBase64(root)}\n`,
    ]) {
      rejects(() => parseCheckpointBody(text), CtErrorCode.MALFORMED_NOTE);
    }
  });
});

describe('checkpoint quorum', () => {
  it('needs more than 2/3 of the weight', () => {
    const four = makeValidators([1, 1, 1, 1]);
    const set = verifierSet(four);
    const verified = verifyCheckpoint(cosign(body, four.slice(0, 3)), set);
    assert.equal(verified.signedWeight, 3);
    assert.equal(verified.totalWeight, 4);
    assert.deepEqual(
      verified.cosigners,
      four.slice(0, 3).map((v) => v.name),
    );
    assert.deepEqual(verified.checkpoint, { origin: ORIGIN, size: 42, root });
    rejects(() => verifyCheckpoint(cosign(body, four.slice(0, 2)), set), CtErrorCode.NO_QUORUM);

    // Exactly 2/3 is not enough.
    const three = makeValidators([1, 1, 1]);
    rejects(
      () => verifyCheckpoint(cosign(body, three.slice(0, 2)), verifierSet(three)),
      CtErrorCode.NO_QUORUM,
    );
    // Weight, not head count.
    const heavy = makeValidators([10, 1, 1, 1]);
    assert.equal(
      verifyCheckpoint(cosign(body, heavy.slice(0, 1)), verifierSet(heavy)).signedWeight,
      10,
    );
    rejects(
      () => verifyCheckpoint(cosign(body, heavy.slice(1)), verifierSet(heavy)),
      CtErrorCode.NO_QUORUM,
    );
    // A duplicated line counts once.
    const twice = addCosignatures(cosign(body, four.slice(0, 2)), []);
    const doubled = `${twice}${twice.slice(twice.indexOf('\n\n') + 2)}`;
    rejects(() => verifyCheckpoint(doubled, set), CtErrorCode.NO_QUORUM);
  });

  it('rejects a bad signature by a known key and ignores unknown keys', () => {
    const validators = makeValidators([1, 1, 1, 1]);
    const outsider = makeValidators([1]);
    const set = verifierSet(validators);
    const note = cosign(body, [...validators, ...outsider]);
    assert.equal(verifyCheckpoint(note, set).unknownSignatures, 1);
    rejects(() => verifySignatures(note, set, { requireKnown: true }), CtErrorCode.UNKNOWN_SIGNER);
    rejects(() => verifyCheckpoint(tamperLine(note, 1), set), CtErrorCode.INVALID_SIGNATURE);
    // The body is what is signed: another root breaks every line.
    const moved = note.replace(toBase64(root), toBase64(sha256(root)));
    rejects(() => verifyCheckpoint(moved, set), CtErrorCode.INVALID_SIGNATURE);
    rejects(
      () => verifyCheckpoint(note, { ...set, origin: 'other.test/log' }),
      CtErrorCode.INVALID_ORIGIN,
    );
    rejects(
      () => verifyCheckpoint(note, verifierSet([...validators, validators[0]!])),
      CtErrorCode.MALFORMED_NOTE,
    );
    // One key under two names would count its weight twice: two lines by one key, weight 2.
    const alias = { ...validators[0]!, name: `${ORIGIN}/alias` };
    const aliased = cosign(body, [validators[0]!, alias]);
    rejects(
      () => verifyCheckpoint(aliased, verifierSet([...validators, alias])),
      CtErrorCode.MALFORMED_NOTE,
    );
  });

  it('carries an RFC 6962 TreeHeadSignature line that checks with node:crypto', () => {
    const validators = makeValidators([1]);
    const logKey = makeLogKey();
    const head = { treeSize: 42, timestamp: 1_700_000_000_123, rootHash: root };
    const note = cosign(body, validators, { head, logKey });
    const set = verifierSet(validators, {
      rfc6962Keys: [{ name: ORIGIN, publicKey: logKey.publicKey }],
    });
    const [signature] = verifyCheckpoint(note, set).rfc6962;
    assert.equal(signature?.timestamp, head.timestamp);
    // DigitallySigned { sha256(4), ecdsa(3), opaque<0..2^16-1> } over RFC 6962 §3.5.
    const ds = signature!.digitallySigned;
    assert.deepEqual([ds[0], ds[1]], [4, 3]);
    assert.equal((ds[2]! << 8) | ds[3]!, ds.length - 4);
    const input = treeHeadSignatureInput(head);
    assert.equal(toHex(input.subarray(0, 2)), '0001');
    assert.ok(
      verify('sha256', input, { key: logKey.publicKey, dsaEncoding: 'der' }, ds.subarray(4)),
    );
    // static-ct-api key ID: SHA-256(origin || 0x0A || 0x05 || LogID)[:4], LogID = SHA-256(SPKI).
    const spki = new Uint8Array(
      createPublicKey(logKey.privateKey).export({ format: 'der', type: 'spki' }),
    );
    assert.equal(toHex(rfc6962LogId(logKey.publicKey)), toHex(sha256(spki)));
    const line = parseSignedNote(note).signatures[1]!;
    assert.equal(line.keyId, noteKeyId(ORIGIN, 0x05, sha256(spki)));
    rejects(() => verifyCheckpoint(tamperLine(note, 1), set), CtErrorCode.INVALID_SIGNATURE);
    // Signed for another timestamp: the line does not verify for this checkpoint's claim.
    const other = signTreeHeadRfc6962({ ...head, treeSize: 43 }, ORIGIN, logKey.privateKey);
    const wrong = addCosignatures(cosign(body, validators), [other]);
    rejects(() => verifyCheckpoint(wrong, set), CtErrorCode.INVALID_SIGNATURE);
  });

  describe('with FALCON-1024', () => {
    let falcon: FalconBackend;
    let keys: FalconKeyPair;
    before(async () => {
      falcon = createFalcon();
      keys = await falcon.generateKeyPair();
    });

    it('verifies the FALCON line and can require it', async () => {
      const validators = makeValidators([1, 1, 1, 1]);
      const name = `${ORIGIN}/falcon/validator-0`;
      const set = verifierSet(validators, {
        falcon,
        falconKeys: [{ name, publicKey: keys.publicKey }],
        requireFalcon: true,
      });
      const plain = cosign(body, validators);
      rejects(() => verifyCheckpoint(plain, set), CtErrorCode.FALCON_SIGNATURE_MISSING);
      const signed = addCosignatures(plain, [await falconLine(body, name, keys, falcon)]);
      const verified = verifyCheckpoint(signed, set);
      assert.deepEqual(verified.falconSigners, [name]);
      assert.equal(verified.signedWeight, 4);
      rejects(() => verifyCheckpoint(tamperLine(signed, 4), set), CtErrorCode.INVALID_SIGNATURE);
      // Key ID: SHA-256(name || 0x0A || 0xFF || "falcon-1024-r3" || public key)[:4].
      const expected = sha256(
        concatBytes(
          new TextEncoder().encode(`${name}\n`),
          Uint8Array.of(0xff),
          new TextEncoder().encode('falcon-1024-r3'),
          keys.publicKey,
        ),
      );
      assert.equal(falconKeyId(name, keys.publicKey), new DataView(expected.buffer).getUint32(0));
      // Without the FALCON key in the set, the line is just an unknown signature.
      assert.equal(verifyCheckpoint(signed, verifierSet(validators)).unknownSignatures, 1);
      const noBackend: CheckpointVerifierSet = { ...set, falcon: undefined };
      rejects(() => verifyCheckpoint(signed, noBackend), CtErrorCode.MALFORMED_NOTE);
    });
  });
});

describe('checkpoints in the log store', () => {
  it('stores verified cosignatures per tree head and serves the latest signed one', () => {
    const db = new Database(':memory:');
    const log = openCtLog(db, { origin: ORIGIN });
    const validators = makeValidators([1, 1, 1, 1]);
    const logKey = makeLogKey();
    const set = verifierSet(validators, {
      rfc6962Keys: [{ name: ORIGIN, publicKey: logKey.publicKey }],
    });
    const first = log.appendBatch([x509Entry(0, 0, 10)], 10);
    assert.equal(log.latestSignedCheckpoint(), undefined);
    assert.equal(log.signedCheckpoint(1), undefined);

    // Cosignatures arrive one validator at a time; the stored note gathers them.
    for (const v of validators.slice(0, 3)) {
      log.addCheckpointSignatures(1, cosign(first.checkpointBody, [v]), set);
    }
    const withLogKey = cosign(first.checkpointBody, validators.slice(0, 1), {
      head: first.treeHead,
      logKey,
    });
    const note = log.addCheckpointSignatures(1, withLogKey, set);
    const verified = verifyCheckpoint(note, set);
    assert.equal(verified.signedWeight, 3);
    assert.equal(verified.rfc6962.length, 1);
    assert.equal(parseSignedNote(note).signatures.length, 4);

    const second = log.appendBatch([x509Entry(1, 0, 20), x509Entry(1, 1, 20)], 20);
    assert.equal(log.latestSignedCheckpoint()?.treeHead.treeSize, 1);
    const count = (): number =>
      db.prepare('SELECT count(*) FROM ct_signature').pluck().get() as number;
    const before = count();
    const bad: Array<[string, CtErrorCode]> = [
      [cosign(first.checkpointBody, validators.slice(0, 1)), CtErrorCode.CHECKPOINT_MISMATCH],
      [cosign(second.checkpointBody, makeValidators([1])), CtErrorCode.UNKNOWN_SIGNER],
      [tamperLine(cosign(second.checkpointBody, validators), 2), CtErrorCode.INVALID_SIGNATURE],
      [
        cosign(second.checkpointBody, [], { head: { ...second.treeHead, timestamp: 21 }, logKey }),
        CtErrorCode.CHECKPOINT_MISMATCH,
      ],
      ['not a note', CtErrorCode.MALFORMED_NOTE],
    ];
    for (const [text, code] of bad) {
      rejects(() => log.addCheckpointSignatures(3, text, set), code);
      assert.equal(count(), before);
    }
    rejects(
      () => log.addCheckpointSignatures(2, cosign(second.checkpointBody, validators), set),
      CtErrorCode.UNKNOWN_TREE_HEAD,
    );
    log.addCheckpointSignatures(3, cosign(second.checkpointBody, validators), set);
    assert.equal(log.latestSignedCheckpoint()?.treeHead.treeSize, 3);
  });
});

describe('split-view evidence', () => {
  it('proves two quorum-signed checkpoints of one size with different roots', () => {
    const validators = makeValidators([1, 1, 1, 1]);
    const set = verifierSet(validators);
    const honest = openCtLog(new Database(':memory:'), { origin: ORIGIN });
    const forked = openCtLog(new Database(':memory:'), { origin: ORIGIN });
    honest.appendBatch([x509Entry(0, 0, 1), x509Entry(0, 1, 1)], 1);
    forked.appendBatch([x509Entry(0, 0, 1), x509Entry(5, 5, 1)], 1);
    const a = cosign(honest.checkpointBody(2), validators.slice(0, 3));
    const b = cosign(forked.checkpointBody(2), validators.slice(1));
    const evidence = detectSplitView(a, b, set);
    assert.equal(evidence.size, 2);
    assert.deepEqual(evidence.notes, [a, b]);
    const verified = verifySplitViewEvidence(JSON.parse(JSON.stringify(evidence)), set);
    assert.deepEqual(
      verified.equivocators,
      validators.slice(1, 3).map((v) => v.name),
    );
    assert.notEqual(verified.roots[0], verified.roots[1]);

    rejects(
      () => detectSplitView(a, cosign(honest.checkpointBody(2), validators.slice(1)), set),
      CtErrorCode.NOT_A_SPLIT_VIEW,
    );
    honest.appendBatch([x509Entry(1, 0, 2)], 2);
    rejects(
      () => detectSplitView(a, cosign(honest.checkpointBody(3), validators), set),
      CtErrorCode.NOT_A_SPLIT_VIEW,
    );
    rejects(
      () => detectSplitView(a, cosign(forked.checkpointBody(2), validators.slice(2)), set),
      CtErrorCode.NO_QUORUM,
    );
    rejects(
      () => verifySplitViewEvidence({ ...evidence, size: 3 }, set),
      CtErrorCode.NOT_A_SPLIT_VIEW,
    );
    rejects(
      () => verifySplitViewEvidence({ ...evidence, notes: [a, tamperLine(b, 0)] }, set),
      CtErrorCode.INVALID_SIGNATURE,
    );
    rejects(
      () => verifySplitViewEvidence({ ...evidence, notes: [a] } as never, set),
      CtErrorCode.NOT_A_SPLIT_VIEW,
    );
    assert.throws(
      () => signCheckpointEd25519('not a body', validators[0]!.name, validators[0]!.privateKey),
      CtError,
    );
  });
});
