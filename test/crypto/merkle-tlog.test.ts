import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { toHex } from '../../src/crypto/bytes.js';
import { MerkleTree, verifyConsistency, verifyInclusion } from '../../src/crypto/merkle.js';
import { buildGoHelper, goModSource, goPrerequisites, type GoBuild } from '../helpers/go-build.js';

/**
 * Cross-checks our RFC 9162 tree against an implementation nobody here wrote: Go's
 * golang.org/x/mod/sumdb/tlog (the Go checksum database's log, compatible with CT), built
 * offline in GOPATH mode from Debian's packages. See test/helpers/go-tlog/main.go.
 */
const HELPER_SOURCE = fileURLToPath(new URL('../helpers/go-tlog/main.go', import.meta.url));

interface TlogResult {
  ok: boolean;
  sameAsTlog: boolean;
  error?: string;
}

interface TlogOutput {
  leaves: TlogResult[];
  roots: TlogResult[];
  inclusion: TlogResult[];
  consistency: TlogResult[];
}

interface InclusionItem {
  index: number;
  size: number;
  root: string;
  proof: string[];
}

interface ConsistencyItem {
  oldSize: number;
  newSize: number;
  oldRoot: string;
  newRoot: string;
  proof: string[];
}

/** mulberry32: a small seeded generator, so every run checks the same cases. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function flipHexBit(hex: string, bit: number): string {
  const bytes = Buffer.from(hex, 'hex');
  bytes[bit >> 3] = (bytes[bit >> 3] as number) ^ (1 << (bit & 7));
  return bytes.toString('hex');
}

const { missing, skip } = goPrerequisites([goModSource('sumdb/tlog/tlog.go')]);

const LEAF_COUNT = 100_000;
const SMALL_SIZES = 70;
const LARGE_SIZE_COUNT = 11;

/**
 * Everything sent to go-tlog: a 100,000-leaf tree; roots for sizes 1..70 and some large sizes;
 * every inclusion and consistency proof up to size 70; random ones in the large trees; and
 * tampered copies. A flipped proof or root bit must be rejected by both verifiers; a changed
 * size must get the same verdict from both (RFC 9162 proofs do not commit to the size, so a
 * size with the same proof shape is accepted by both; see merkle.test.ts).
 */
function buildCases() {
  const random = seededRandom(6962);
  const randomBelow = (n: number): number => Math.floor(random() * n);
  const largeSizes = [65_535, 65_536, 65_537, 99_999, LEAF_COUNT];
  while (largeSizes.length < LARGE_SIZE_COUNT) {
    largeSizes.push(SMALL_SIZES + randomBelow(LEAF_COUNT - SMALL_SIZES));
  }

  const tree = new MerkleTree();
  const leaves: Array<{ data: string; hash: string }> = [];
  for (let i = 0; i < LEAF_COUNT; i++) {
    const data = new Uint8Array(randomBelow(17)).map(() => randomBelow(256));
    tree.appendLeaf(data);
    leaves.push({ data: toHex(data), hash: toHex(tree.leafHashAt(i)) });
  }
  const rootHex = (size: number): string => toHex(tree.root(size));
  const inclusionItem = (index: number, size: number): InclusionItem => ({
    index,
    size,
    root: rootHex(size),
    proof: tree.inclusionProof(index, size).map(toHex),
  });
  const consistencyItem = (oldSize: number, newSize: number): ConsistencyItem => ({
    oldSize,
    newSize,
    oldRoot: rootHex(oldSize),
    newRoot: rootHex(newSize),
    proof: tree.consistencyProof(oldSize, newSize).map(toHex),
  });

  const sizes = [...Array.from({ length: SMALL_SIZES }, (_, i) => i + 1), ...largeSizes];
  const inclusion: InclusionItem[] = [];
  const consistency: ConsistencyItem[] = [];
  for (let size = 1; size <= SMALL_SIZES; size++) {
    for (let index = 0; index < size; index++) inclusion.push(inclusionItem(index, size));
    for (let oldSize = 1; oldSize <= size; oldSize++) {
      consistency.push(consistencyItem(oldSize, size));
    }
  }
  for (const size of largeSizes) {
    inclusion.push(inclusionItem(0, size), inclusionItem(size - 1, size));
    for (let i = 0; i < 40; i++) inclusion.push(inclusionItem(randomBelow(size), size));
    for (const oldSize of [1, 2, 7, 64, SMALL_SIZES, size]) {
      consistency.push(consistencyItem(oldSize, size));
    }
    for (let i = 0; i < 20; i++) consistency.push(consistencyItem(1 + randomBelow(size), size));
  }

  const honestInclusion = inclusion.length;
  const honestConsistency = consistency.length;
  const sample = <T>(list: T[], count: number): T[] =>
    Array.from({ length: count }, () => list[randomBelow(list.length)] as T);
  /** The item with one bit flipped in one proof element, or null for an empty proof. */
  const flipProofElement = <T extends { proof: string[] }>(item: T): T | null => {
    if (item.proof.length === 0) return null;
    const proof = [...item.proof];
    const at = randomBelow(proof.length);
    proof[at] = flipHexBit(proof[at] as string, randomBelow(256));
    return { ...item, proof };
  };
  const flippedInclusion: InclusionItem[] = [];
  const resizedInclusion: InclusionItem[] = [];
  for (const item of sample(inclusion.slice(0, honestInclusion), 400)) {
    const flipped = flipProofElement(item);
    if (flipped) flippedInclusion.push(flipped);
    flippedInclusion.push({ ...item, root: flipHexBit(item.root, randomBelow(256)) });
    resizedInclusion.push({ ...item, size: item.size ^ (1 << randomBelow(8)) });
  }
  const flippedConsistency: ConsistencyItem[] = [];
  const resizedConsistency: ConsistencyItem[] = [];
  for (const item of sample(consistency.slice(0, honestConsistency), 400)) {
    const flipped = flipProofElement(item);
    if (flipped) flippedConsistency.push(flipped);
    flippedConsistency.push({ ...item, oldRoot: flipHexBit(item.oldRoot, randomBelow(256)) });
    const bit = 1 << randomBelow(8);
    resizedConsistency.push(
      random() < 0.5
        ? { ...item, oldSize: item.oldSize ^ bit }
        : { ...item, newSize: item.newSize ^ bit },
    );
  }
  inclusion.push(...flippedInclusion, ...resizedInclusion);
  consistency.push(...flippedConsistency, ...resizedConsistency);
  return {
    leaves,
    roots: sizes.map((size) => ({ size, root: rootHex(size) })),
    inclusion,
    consistency,
    honestInclusion,
    honestConsistency,
    flippedInclusion,
    flippedConsistency,
    resizedInclusion,
    resizedConsistency,
  };
}

describe('Merkle tree agrees with Go golang.org/x/mod/sumdb/tlog', { skip }, () => {
  let go: GoBuild;
  let output: TlogOutput;
  let cases: ReturnType<typeof buildCases>;

  before(async () => {
    if (missing !== undefined) assert.fail(`CI must run the Go tlog cross-check: ${missing}`);
    go = await buildGoHelper(HELPER_SOURCE, 'go-tlog');
    cases = buildCases();
    const { leaves, roots, inclusion, consistency } = cases;
    const payload = JSON.stringify({ leaves, roots, inclusion, consistency });
    const run = spawnSync(go.binary, [], {
      input: payload,
      env: go.env,
      maxBuffer: 256 * 1024 * 1024,
      timeout: 600_000,
    });
    assert.equal(run.status, 0, `go-tlog failed: ${run.error?.message ?? run.stderr.toString()}`);
    output = JSON.parse(run.stdout.toString()) as TlogOutput;
  });

  after(() => {
    go?.remove();
  });

  it('computes the same leaf hashes as tlog.RecordHash', () => {
    assert.equal(output.leaves.length, LEAF_COUNT);
    const wrong = output.leaves.findIndex((result) => !result.ok);
    assert.equal(wrong, -1, `leaf ${wrong} differs from tlog`);
  });

  it(`computes the same roots as tlog.TreeHash for sizes 1..${SMALL_SIZES} and ${LARGE_SIZE_COUNT} large sizes`, () => {
    const { roots } = cases;
    assert.equal(output.roots.length, roots.length);
    output.roots.forEach((result, i) => {
      const size = (roots[i] as { size: number }).size;
      assert.ok(result.ok, `root of size ${size}: ${result.error ?? 'differs from tlog'}`);
    });
  });

  it('produces inclusion proofs that tlog.CheckRecord accepts and that equal tlog.ProveRecord', () => {
    const { inclusion, honestInclusion } = cases;
    assert.equal(output.inclusion.length, inclusion.length);
    for (let i = 0; i < honestInclusion; i++) {
      const result = output.inclusion[i] as TlogResult;
      const { index, size } = inclusion[i] as InclusionItem;
      assert.ok(result.ok, `inclusion of ${index} in ${size}: ${result.error ?? ''}`);
      assert.ok(result.sameAsTlog, `inclusion of ${index} in ${size} differs from tlog's proof`);
    }
  });

  it('produces consistency proofs that tlog.CheckTree accepts and that equal tlog.ProveTree', () => {
    const { consistency, honestConsistency } = cases;
    assert.equal(output.consistency.length, consistency.length);
    for (let i = 0; i < honestConsistency; i++) {
      const result = output.consistency[i] as TlogResult;
      const { oldSize, newSize } = consistency[i] as ConsistencyItem;
      assert.ok(result.ok, `consistency ${oldSize} → ${newSize}: ${result.error ?? ''}`);
      assert.ok(result.sameAsTlog, `consistency ${oldSize} → ${newSize} differs from tlog's proof`);
    }
  });

  it('sees tlog reject every flipped bit in a proof or root, as our verifiers do', () => {
    const { leaves, honestInclusion, honestConsistency, flippedInclusion, flippedConsistency } =
      cases;
    const inclusionResults = output.inclusion.slice(honestInclusion);
    flippedInclusion.forEach((item, i) => {
      const label = `tampered inclusion of ${item.index} in ${item.size}`;
      assert.equal((inclusionResults[i] as TlogResult).ok, false, `tlog accepted ${label}`);
      const ours = verifyInclusion(
        Buffer.from((leaves[item.index] as { hash: string }).hash, 'hex'),
        item.index,
        item.size,
        item.proof.map((hex) => Buffer.from(hex, 'hex')),
        Buffer.from(item.root, 'hex'),
      );
      assert.equal(ours, false, `we accepted ${label}`);
    });
    const consistencyResults = output.consistency.slice(honestConsistency);
    flippedConsistency.forEach((item, i) => {
      const label = `tampered consistency ${item.oldSize} → ${item.newSize}`;
      assert.equal((consistencyResults[i] as TlogResult).ok, false, `tlog accepted ${label}`);
      const ours = verifyConsistency(
        item.oldSize,
        item.newSize,
        Buffer.from(item.oldRoot, 'hex'),
        Buffer.from(item.newRoot, 'hex'),
        item.proof.map((hex) => Buffer.from(hex, 'hex')),
      );
      assert.equal(ours, false, `we accepted ${label}`);
    });
  });

  it('gives the same verdict as tlog when the claimed size is changed', () => {
    const { leaves, honestInclusion, honestConsistency } = cases;
    const { flippedInclusion, flippedConsistency, resizedInclusion, resizedConsistency } = cases;
    const verdicts = { accepted: 0, rejected: 0 };
    const inclusionResults = output.inclusion.slice(honestInclusion + flippedInclusion.length);
    resizedInclusion.forEach((item, i) => {
      const theirs = (inclusionResults[i] as TlogResult).ok;
      const ours = verifyInclusion(
        Buffer.from((leaves[item.index] as { hash: string }).hash, 'hex'),
        item.index,
        item.size,
        item.proof.map((hex) => Buffer.from(hex, 'hex')),
        Buffer.from(item.root, 'hex'),
      );
      assert.equal(ours, theirs, `inclusion of ${item.index} claimed in size ${item.size}`);
      verdicts[ours ? 'accepted' : 'rejected']++;
    });
    const consistencyResults = output.consistency.slice(
      honestConsistency + flippedConsistency.length,
    );
    resizedConsistency.forEach((item, i) => {
      const theirs = (consistencyResults[i] as TlogResult).ok;
      const ours = verifyConsistency(
        item.oldSize,
        item.newSize,
        Buffer.from(item.oldRoot, 'hex'),
        Buffer.from(item.newRoot, 'hex'),
        item.proof.map((hex) => Buffer.from(hex, 'hex')),
      );
      assert.equal(ours, theirs, `consistency claimed as ${item.oldSize} → ${item.newSize}`);
      verdicts[ours ? 'accepted' : 'rejected']++;
    });
    assert.ok(
      verdicts.accepted > 0 && verdicts.rejected > 0,
      `both verdicts must occur: ${JSON.stringify(verdicts)}`,
    );
  });
});
