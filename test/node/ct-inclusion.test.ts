import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { toBase64 } from '../../src/crypto/bytes.js';
import {
  inclusionPathFromLeafHashes,
  leafHash,
  rootFromLeafHashes,
  verifyInclusion,
} from '../../src/crypto/merkle.js';
import { CliError } from '../../src/node/cli-error.js';
import { checkCtInclusion, fetchSignedTreeHead } from '../../src/node/cert-tools.js';
import { encodeMerkleTreeLeaf } from '../../src/trustchain/ct/index.js';
import { runCli } from '../helpers/cli.js';
import { startFakeCtLog, type FakeCtLog } from '../helpers/fake-ct-log.js';

/**
 * `checkCtInclusion` (what `hypermesh ct proof` runs) against logs on 127.0.0.1 that this test
 * makes up: the audit path must verify against the trusted (quorum) head given, at its size —
 * never against the log's own `get-sth` — and every malformed body is a CliError naming the URL
 * and the field. The same checks through the CLI with a real cluster are in cert-cluster.test.ts.
 */
const certificate = randomBytes(600);
const timestamp = 1_767_268_800_000;
const certLeaf = leafHash(
  encodeMerkleTreeLeaf({ timestamp, entry: { type: 'x509', certificate } }),
);
const randomLeaves = (n: number): Uint8Array[] => Array.from({ length: n }, () => randomBytes(32));

/** The honest tree: 3 other entries, the certificate at index 3, then 9 more. */
const honest = [...randomLeaves(3), certLeaf, ...randomLeaves(9)];
const HEAD_SIZE = 10;
const head = { size: HEAD_SIZE, root: rootFromLeafHashes(honest.slice(0, HEAD_SIZE)) };

async function withLog<T>(
  options: Parameters<typeof startFakeCtLog>[0],
  work: (log: FakeCtLog) => Promise<T>,
): Promise<T> {
  const log = await startFakeCtLog(options);
  try {
    return await work(log);
  } finally {
    await log.close();
  }
}

/** Asserts `promise` rejects with a CliError (exit 1) whose message matches every pattern. */
async function assertCliError(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  const error = await promise.then(
    () => assert.fail('expected a CliError'),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof CliError, `expected a CliError, got ${String(error)}`);
  assert.equal(error.exitCode, 1);
  for (const pattern of patterns) assert.match(error.message, pattern);
}

const escaped = (text: string): RegExp => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

describe('checkCtInclusion against a trusted tree head', () => {
  it('the honest log (ahead of the head) proves inclusion at the head size', async () => {
    await withLog({ leafHashes: honest }, async (log) => {
      const inclusion = await checkCtInclusion(log.url, certificate, timestamp, head);
      assert.deepEqual(inclusion, {
        url: log.url,
        treeSize: HEAD_SIZE,
        leafIndex: 3,
        rootHash: Buffer.from(head.root).toString('hex'),
      });
      // A trailing slash in the URL is the same log.
      const again = await checkCtInclusion(`${log.url}/`, certificate, timestamp, head);
      assert.equal(again.leafIndex, 3);
    });
  });

  it('a made-up, self-consistent tree holding the certificate is refused', async () => {
    const madeUp = [...randomLeaves(5), certLeaf, ...randomLeaves(14)];
    await withLog({ leafHashes: madeUp }, async (log) => {
      // The made-up tree proves the certificate against its own get-sth: trusting get-sth would
      // have accepted it.
      const sth = await fetchSignedTreeHead(log.url);
      const path = inclusionPathFromLeafHashes(5, madeUp);
      assert.ok(verifyInclusion(certLeaf, 5, sth.tree_size, path, log.root));
      await assertCliError(
        checkCtInclusion(log.url, certificate, timestamp, head),
        escaped(log.url),
        /does not verify against the quorum tree head \(size 10, root [0-9a-f]{64}\)/,
      );
    });
  });

  it('the same tree with one other entry below the certificate is refused', async () => {
    const altered = [...honest];
    altered[0] = randomBytes(32);
    await withLog({ leafHashes: altered }, async (log) => {
      await assertCliError(
        checkCtInclusion(log.url, certificate, timestamp, head),
        /does not verify against the quorum tree head/,
      );
    });
  });

  it('a log behind the head is told to retry, not checked against its own head', async () => {
    await withLog({ leafHashes: honest.slice(0, 7) }, async (log) => {
      await assertCliError(
        checkCtInclusion(log.url, certificate, timestamp, head),
        new RegExp(
          `the log at ${escaped(log.url).source} is behind the quorum tree head \\(size 7 < 10\\); retry`,
        ),
      );
    });
  });

  it('a log without the entry, and the empty head, are clear errors', async () => {
    const without = honest.map((leaf) => (leaf === certLeaf ? randomBytes(32) : leaf));
    await withLog({ leafHashes: without }, async (log) => {
      await assertCliError(
        checkCtInclusion(log.url, certificate, timestamp, head),
        /has no entry for this certificate in its first 10 entries/,
      );
    });
    await assertCliError(
      checkCtInclusion('http://127.0.0.1:9', certificate, timestamp, {
        size: 0,
        root: rootFromLeafHashes([]),
      }),
      /empty log \(size 0\)/,
    );
  });

  it('no answer is a CliError naming the URL', async () => {
    const log = await startFakeCtLog({ leafHashes: honest });
    await log.close();
    await assertCliError(checkCtInclusion(log.url, certificate, timestamp, head), escaped(log.url));
  });

  const goodPath = inclusionPathFromLeafHashes(3, honest.slice(0, HEAD_SIZE)).map(toBase64);
  const hash31 = toBase64(randomBytes(31));
  const malformedProofs: [string, unknown, RegExp][] = [
    ['audit_path missing', { leaf_index: 3 }, /body\.audit_path/],
    ['audit_path not an array', { leaf_index: 3, audit_path: 'abc' }, /body\.audit_path/],
    [
      'audit_path of 65 hashes',
      { leaf_index: 3, audit_path: Array.from({ length: 65 }, () => goodPath[0]) },
      /body\.audit_path/,
    ],
    ['a 31-byte hash', { leaf_index: 3, audit_path: [hash31] }, /body\.audit_path\[0\]/],
    [
      'a hash that is not base64',
      { leaf_index: 3, audit_path: [...goodPath.slice(1), '!'.repeat(44)] },
      /body\.audit_path\[\d\]/,
    ],
    ['a number for a hash', { leaf_index: 3, audit_path: [7] }, /body\.audit_path\[0\]/],
    ['leaf_index missing', { audit_path: goodPath }, /body\.leaf_index/],
    ['leaf_index negative', { leaf_index: -1, audit_path: goodPath }, /body\.leaf_index/],
    ['leaf_index a fraction', { leaf_index: 1.5, audit_path: goodPath }, /body\.leaf_index/],
    ['leaf_index a string', { leaf_index: '3', audit_path: goodPath }, /body\.leaf_index/],
    ['the body null', null, /body/],
    ['an array body', [], /body/],
  ];
  for (const [what, proof, field] of malformedProofs) {
    it(`a proof body with ${what} is a CliError naming the URL and the field`, async () => {
      await withLog({ leafHashes: honest, proof }, async (log) => {
        await assertCliError(
          checkCtInclusion(log.url, certificate, timestamp, head),
          escaped(`${log.url}/ct/v1/get-proof-by-hash`),
          /malformed answer/,
          field,
        );
      });
    });
  }

  it('a proof body that is not JSON, or too large, is a CliError', async () => {
    await withLog({ leafHashes: honest, proof: '{"leaf_index": 3, "audit' }, async (log) => {
      await assertCliError(
        checkCtInclusion(log.url, certificate, timestamp, head),
        escaped(`${log.url}/ct/v1/get-proof-by-hash`),
        /not JSON/,
      );
    });
    const huge = JSON.stringify({ leaf_index: 3, audit_path: goodPath, pad: 'x'.repeat(70_000) });
    await withLog({ leafHashes: honest, proof: huge }, async (log) => {
      await assertCliError(
        checkCtInclusion(log.url, certificate, timestamp, head),
        /larger than 65536 bytes/,
      );
    });
  });

  const validSth = {
    tree_size: 13,
    timestamp,
    sha256_root_hash: toBase64(rootFromLeafHashes(honest)),
    tree_head_signature: toBase64(randomBytes(74)),
  };
  const malformedSths: [string, unknown, RegExp][] = [
    ['tree_size missing', { ...validSth, tree_size: undefined }, /body\.tree_size/],
    ['tree_size negative', { ...validSth, tree_size: -13 }, /body\.tree_size/],
    ['tree_size a string', { ...validSth, tree_size: '13' }, /body\.tree_size/],
    [
      'a 33-byte root',
      { ...validSth, sha256_root_hash: toBase64(randomBytes(33)) },
      /body\.sha256_root_hash/,
    ],
    ['timestamp a fraction', { ...validSth, timestamp: 0.5 }, /body\.timestamp/],
    ['no signature', { ...validSth, tree_head_signature: undefined }, /body\.tree_head_signature/],
  ];
  for (const [what, sth, field] of malformedSths) {
    it(`a get-sth body with ${what} is a CliError naming the URL and the field`, async () => {
      await withLog({ leafHashes: honest, sth }, async (log) => {
        await assertCliError(
          checkCtInclusion(log.url, certificate, timestamp, head),
          escaped(`${log.url}/ct/v1/get-sth`),
          field,
        );
        const printed = await runCli(['ct', 'sth', '--url', log.url]);
        assert.equal(printed.code, 1, printed.out);
        assert.match(printed.err, field);
        assert.equal(printed.out, '');
      });
    });
  }
});

describe('hypermesh ct sth --url', () => {
  it('prints a well-formed get-sth; an error answer exits 1', async () => {
    await withLog({ leafHashes: honest }, async (log) => {
      const printed = await runCli(['ct', 'sth', '--url', log.url]);
      assert.equal(printed.code, 0, printed.err);
      const sth = JSON.parse(printed.out) as { tree_size: number; sha256_root_hash: string };
      assert.equal(sth.tree_size, honest.length);
      assert.equal(sth.sha256_root_hash, toBase64(log.root));
      assert.match(
        (await runCli(['ct', 'sth', '--help'])).out,
        /tree_head_signature is NOT\s+verified/,
      );
    });
    await withLog({ leafHashes: honest, sth: '<html>bad gateway</html>' }, async (log) => {
      const printed = await runCli(['ct', 'sth', '--url', log.url]);
      assert.equal(printed.code, 1);
      assert.match(printed.err, /not JSON/);
    });
  });
});
