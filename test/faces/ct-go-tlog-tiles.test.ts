import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Database } from 'better-sqlite3';
import { Registry } from 'prom-client';
import { toBase64, toHex } from '../../src/crypto/bytes.js';
import { createFalcon } from '../../src/crypto/falcon.js';
import { sha256 } from '../../src/crypto/hash.js';
import { startCtHttpServer, type CtHttpServer } from '../../src/faces/ct-http.js';
import {
  addCosignatures,
  openCtLog,
  parseSignedNote,
  formatSignedNote,
  signCheckpointFalcon,
  type CtLog,
} from '../../src/trustchain/ct/index.js';
import { buildGoHelper, goModSource, goPrerequisites, type GoBuild } from '../helpers/go-build.js';
import { withDeadline } from '../helpers/wait.js';
import {
  ORIGIN,
  cosign,
  makeLogKey,
  makeValidators,
  tempDatabase,
  verifierSet,
  x509Entry,
} from '../trustchain/ct/fixtures.js';

/**
 * An independent client checks the log over HTTP: test/helpers/go-tlog-tiles/main.go, built
 * offline in GOPATH mode against Debian's golang.org/x/mod (sumdb/note and sumdb/tlog), fetches
 * the checkpoint, tiles and entry bundles from our face on 127.0.0.1 and verifies signatures,
 * the tree hash, inclusion and consistency (its own proofs and those of the RFC 6962 API).
 */
const HELPER_SOURCE = fileURLToPath(new URL('../helpers/go-tlog-tiles/main.go', import.meta.url));

const { missing, skip } = goPrerequisites([
  goModSource('sumdb/note/note.go'),
  goModSource('sumdb/tlog/tile.go'),
]);

interface CheckResult {
  index?: number;
  oldSize?: number;
  ok: boolean;
  dynamicOk: boolean;
  sameAsTlog: boolean;
  error?: string;
}

interface GoOutput {
  size: number;
  root: string;
  verifiedSigs: string[];
  unverifiedSigs: number;
  treeHashOk: boolean;
  bundlesOk: boolean;
  sthOk: boolean;
  sthError?: string;
  leaves: CheckResult[];
  consistency: CheckResult[];
  badRejected: CheckResult[];
  tilesFetched: string[];
}

/** Runs the Go client without blocking the event loop (our HTTP server lives in this process). */
function runGo(
  { binary, env }: GoBuild,
  input: unknown,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(JSON.stringify(input));
  });
}

/** Batches ending at sizes 1, 255, 256, 257, 1000, 65536 and 66000: partial and full tiles on levels 0–2. */
const BATCHES = [1, 254, 1, 1, 743, 64_536, 464];

describe('CT log tiles agree with Go golang.org/x/mod/sumdb/tlog over HTTP', { skip }, () => {
  let go: GoBuild;
  let server: CtHttpServer;
  let log: CtLog;
  let db: Database;
  let cleanup: () => void = () => undefined;
  const validators = makeValidators([1, 1, 1, 1]);
  const logKey = makeLogKey();
  const sizes: number[] = [];
  let input: Record<string, unknown>;

  before(async () => {
    if (missing !== undefined) assert.fail(`CI must run the Go tlog-tiles check: ${missing}`);
    go = await buildGoHelper(HELPER_SOURCE, 'go-tlog-tiles');

    const temp = tempDatabase();
    cleanup = temp.cleanup;
    db = temp.db;
    log = openCtLog(temp.db, { origin: ORIGIN });
    const falcon = createFalcon();
    const falconKeys = await falcon.generateKeyPair();
    const falconName = `${ORIGIN}/falcon/validator-0`;
    const set = verifierSet(validators, {
      falcon,
      falconKeys: [{ name: falconName, publicKey: falconKeys.publicKey }],
      rfc6962Keys: [{ name: ORIGIN, publicKey: logKey.publicKey }],
      requireFalcon: true,
    });
    for (const [batch, count] of BATCHES.entries()) {
      const entries = Array.from({ length: count }, (_, i) => x509Entry(batch, i, 10_000 + batch));
      const { treeHead, checkpointBody } = log.appendBatch(entries, 10_000 + batch);
      // Three of four validators (a quorum), the FALCON line and the RFC 6962 log signature.
      const note = addCosignatures(
        cosign(checkpointBody, validators.slice(0, 3), { head: treeHead, logKey }),
        [await signCheckpointFalcon(checkpointBody, falconName, falconKeys, falcon)],
      );
      log.addCheckpointSignatures(treeHead.treeSize, note, set);
      sizes.push(treeHead.treeSize);
    }
    server = await startCtHttpServer({
      log,
      host: '127.0.0.1',
      port: 0,
      roots: () => [],
      rfc6962Key: { name: ORIGIN, publicKey: logKey.publicKey },
      registry: new Registry(),
    });

    const size = log.size;
    const latest = log.signedCheckpoint(size) as string;
    const parsed = parseSignedNote(latest);
    const otherRoot = latest.replace(
      toBase64(log.rootAt(size)),
      toBase64(sha256(log.rootAt(size))),
    );
    const flipped = parsed.signatures.map((s, i) => {
      if (i !== 1) return s;
      const signature = s.signature.slice();
      signature[0] = (signature[0] as number) ^ 0x80;
      return { ...s, signature };
    });
    input = {
      baseUrl: server.url,
      origin: ORIGIN,
      verifiers: validators.map((v) => ({ name: v.name, publicKey: toHex(v.publicKey) })),
      logKeySpki: toHex(
        new Uint8Array(createPublicKey(logKey.privateKey).export({ format: 'der', type: 'spki' })),
      ),
      leaves: [
        0,
        1,
        254,
        255,
        256,
        257,
        999,
        1000,
        4_097,
        65_535,
        65_536,
        65_791,
        65_792,
        size - 1,
      ],
      oldCheckpoints: sizes.slice(0, -1).map((s) => log.signedCheckpoint(s) as string),
      badCheckpoints: [
        otherRoot,
        formatSignedNote(parsed.text, flipped),
        cosign(log.checkpointBody(size), makeValidators([1])),
        latest.replace(ORIGIN, 'other.test/log'),
      ],
    };
  });

  after(async () => {
    await server?.close();
    cleanup();
    go?.remove();
  });

  it('verifies the checkpoint, tiles, inclusion, consistency and get-sth independently', async () => {
    const run = await withDeadline(runGo(go, input), 300_000, 'go-tlog-tiles');
    assert.equal(run.code, 0, `go-tlog-tiles failed: ${run.stderr}`);
    const out = JSON.parse(run.stdout) as GoOutput;
    assert.equal(out.size, 66_000);
    assert.equal(out.root, toBase64(log.rootAt(66_000)));
    assert.deepEqual(
      out.verifiedSigs,
      validators.slice(0, 3).map((v) => v.name),
    );
    assert.equal(
      out.unverifiedSigs,
      2,
      'the FALCON and RFC 6962 lines are unknown to note.Open and ignored',
    );
    assert.ok(out.treeHashOk, 'tlog.TreeHash over our tiles is the checkpoint root');
    assert.ok(out.bundlesOk, 'every entry in the fetched bundles hashes to its level-0 tile hash');
    assert.ok(out.sthOk, `get-sth: ${out.sthError ?? ''}`);
    assert.ok(
      out.tilesFetched.includes('tile/2/000.p/1'),
      `level-2 tile fetched: ${out.tilesFetched.join(' ')}`,
    );
    assert.ok(out.tilesFetched.some((p) => p.startsWith('tile/0/257.p/')));
    assert.equal(out.leaves.length, (input.leaves as number[]).length);
    for (const leaf of out.leaves) {
      assert.ok(leaf.ok, `tlog.CheckRecord for leaf ${leaf.index}: ${leaf.error ?? ''}`);
      assert.ok(leaf.dynamicOk, `get-proof-by-hash for leaf ${leaf.index}: ${leaf.error ?? ''}`);
      assert.ok(
        leaf.sameAsTlog,
        `get-proof-by-hash path for ${leaf.index} equals tlog.ProveRecord`,
      );
    }
    assert.deepEqual(
      out.consistency.map((c) => c.oldSize),
      sizes.slice(0, -1),
    );
    for (const check of out.consistency) {
      assert.ok(check.ok, `tlog.CheckTree ${check.oldSize} → 66000: ${check.error ?? ''}`);
      assert.ok(check.dynamicOk, `get-sth-consistency ${check.oldSize}: ${check.error ?? ''}`);
      assert.ok(check.sameAsTlog, `get-sth-consistency ${check.oldSize} equals tlog.ProveTree`);
    }
    assert.equal(out.badRejected.length, 4);
    out.badRejected.forEach((check, i) =>
      assert.ok(check.ok, `tampered checkpoint ${i} accepted by note.Open`),
    );
  });

  it('fails when a stored hash is tampered with', async () => {
    // Corrupt leaf hash 300 in the store; Go's TileHashReader must notice while authenticating tiles.
    db.prepare('UPDATE ct_node SET hash = zeroblob(32) WHERE level = 0 AND idx = 300').run();
    const run = await withDeadline(
      runGo(go, { ...input, oldCheckpoints: [], badCheckpoints: [] }),
      300_000,
      'go-tlog-tiles',
    );
    const out = run.code === 0 ? (JSON.parse(run.stdout) as GoOutput) : undefined;
    const failed =
      run.code !== 0 || out?.treeHashOk === false || out?.leaves.some((l) => !l.ok) === true;
    assert.ok(failed, 'Go accepted a log with a tampered leaf hash');
  });
});
