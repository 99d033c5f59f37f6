import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { GenesisDocument } from '../../src/consensus/genesis.js';
import { concatBytes, toHex } from '../../src/crypto/bytes.js';
import { octetString, tlv } from '../../src/crypto/der.js';
import { writeKeyFile } from '../../src/crypto/keyfile.js';
import { derToPem } from '../../src/crypto/x509.js';
import { OCSP_MAX_BLOCK_AGE_MS } from '../../src/faces/ocsp-http.js';
import {
  CT_LOG_FILE,
  CT_LOG_KEY_FILE,
  ctOrigin,
  startCaNode,
  type CaNode,
} from '../../src/node/ca-node.js';
import { createLogger } from '../../src/node/log.js';
import type { ValidatorNodeConfig } from '../../src/node/node-config.js';
import { openDatabase } from '../../src/storage/database.js';
import { caRequestBody, caRevokeBody, treeHeadRoot } from '../../src/trustchain/ca-module/index.js';
import { encodeTrustBundle } from '../../src/trustchain/ca/bundle.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import {
  OcspResponseStatus,
  issuerHashes,
  ocspErrorResponse,
  type Issuer,
} from '../../src/trustchain/ca/index.js';
import {
  encodeCertificateChain,
  encodeMerkleTreeLeaf,
  openCtLog,
} from '../../src/trustchain/ct/index.js';
import { makeSender } from '../consensus/application/fixture.js';
import {
  CHAIN_ID,
  SKIP_WITHOUT_OPENSSL,
  generateKey,
  runOpenssl,
} from '../trustchain/ca/fixtures.js';
import {
  GRANTED_ZONE,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode as CaModuleNode,
} from '../trustchain/ca-module/fixture.js';

/** Requests a service certificate for `dnsName` in a block by val-b, then val-b publishes it. */
async function issueAndPublish(
  fixture: CaFixture,
  chain: CaModuleNode,
  dnsName: string,
): Promise<void> {
  chain.block(
    [
      caTx(
        fixture.operator,
        caRequestBody({
          profile: 'service',
          csr: createCsr({ privateKey: generateKey('p256') }),
          dnsNames: [dnsName],
        }),
      ),
    ],
    'val-b',
  );
  const height = chain.node.store.blocks.latestHeight() as number;
  const { tx } = await publication(fixture, chain, height, 'val-b');
  chain.block([publishTx(fixture, 'val-b', tx)]);
}

/**
 * The node's check of its CT log against the consensus tree head (src/node/ca-node.ts): an
 * honest log agrees and `hypermesh_ct_split_view_total` stays 0; a log file holding an entry the
 * chain never published is reported once (error line with both roots, counter 1), and the node
 * goes on appending.
 */
describe('ca-node: local CT log against the consensus tree head', () => {
  let fixture: CaFixture;
  let chain: CaModuleNode;
  let root: string;

  before(async () => {
    fixture = await createCaFixture();
    chain = await fixture.openCaNode();
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-ca-node-'));
    await issueAndPublish(fixture, chain, `n.${GRANTED_ZONE}`);
  });

  after(async () => {
    await chain?.close();
    await rm(root, { recursive: true, force: true });
  });

  async function observer(
    name: string,
    options: {
      readonly serveCt?: boolean;
      readonly level?: 'warn' | 'error';
      /** The node identity's Ed25519 key (default: a new one). */
      readonly identity?: KeyObject;
    } = {},
  ): Promise<{ node: CaNode; registry: Registry; lines: string[] }> {
    const registry = new Registry();
    const lines: string[] = [];
    await mkdir(path.join(root, name), { recursive: true });
    const node = await startCaNode({
      config: {
        name,
        dataDir: path.join(root, name),
        ca: null,
        ct: options.serveCt === true ? { http: { host: '127.0.0.1', port: 0 } } : null,
      } as unknown as ValidatorNodeConfig,
      genesis: { chainId: CHAIN_ID } as GenesisDocument,
      ca: fixture.config,
      state: { get: (key) => chain.node.store.state.get(key) },
      query: (request) => chain.node.app.query(request),
      identity: {
        ed25519: options.identity ?? makeSender().privateKey,
        falconPublicKey: new Uint8Array(0),
        falconSecretKey: new Uint8Array(0),
      },
      submit: () => Promise.resolve({ ok: true }),
      registry,
      logger: createLogger(
        { node: name },
        (line) => void lines.push(line),
        options.level ?? 'error',
      ),
    });
    return { node, registry, lines };
  }

  async function splitViews(registry: Registry): Promise<number> {
    const metric = await registry.getSingleMetric('hypermesh_ct_split_view_total')?.get();
    return metric?.values[0]?.value ?? Number.NaN;
  }

  it('an honest log equals the consensus head; no split view is counted', async () => {
    const { node, registry, lines } = await observer('honest');
    try {
      node.committed(chain.node.store.blocks.latestHeight() as number);
      const head = chain.state().treeHead();
      assert.equal(head.range.size, 1);
      assert.equal(node.log.size, 1);
      assert.equal(toHex(node.log.rootAt(1)), toHex(treeHeadRoot(head)));
      assert.equal(await splitViews(registry), 0);
      assert.deepEqual(lines, []);
    } finally {
      await node.close();
    }
  });

  it('a replaced ct-log.key: warned, the latest head re-signed, get-sth answers at once', async () => {
    const name = 'rekeyed';
    const keyFile = path.join(root, name, CT_LOG_KEY_FILE);
    const sth = async (node: CaNode): Promise<Response> =>
      fetch(`${node.ctUrl as string}/ct/v1/get-sth`);
    const started = { serveCt: true, level: 'warn', identity: makeSender().privateKey } as const;
    const first = await observer(name, started);
    try {
      first.node.committed(chain.node.store.blocks.latestHeight() as number);
      assert.equal((await sth(first.node)).status, 200);
    } finally {
      await first.node.close();
    }
    assert.deepEqual(first.lines, [], 'the first key is created without a warning');
    const oldKey = await readFile(keyFile);
    await rm(keyFile);

    // Restarted without its key: a new one, and no block publishes anything.
    const second = await observer(name, started);
    try {
      assert.notDeepEqual(await readFile(keyFile), oldKey);
      const answer = await sth(second.node);
      assert.equal(answer.status, 200, await answer.clone().text());
      const body = (await answer.json()) as { tree_size: number };
      assert.equal(body.tree_size, second.node.log.size);
      assert.equal(second.lines.length, 1, second.lines.join('\n'));
      const line = JSON.parse(second.lines[0] as string) as Record<string, unknown>;
      assert.equal(line.level, 'warn');
      assert.equal(line.msg, 'ct log key was missing: generated a new one for an existing log');
      assert.equal(line.file, keyFile);
      // Both keys' lines stay on the head: old and new RFC 6962, and the identity's Ed25519.
      const note = second.node.log.signedCheckpoint(second.node.log.size) as string;
      assert.equal(
        note
          .trimEnd()
          .split('\n')
          .filter((l) => l.startsWith('\u2014 ')).length,
        3,
      );
    } finally {
      await second.node.close();
    }

    // Restarted with its key: nothing is re-signed, nothing is warned.
    const third = await observer(name, started);
    try {
      const note = third.node.log.signedCheckpoint(third.node.log.size) as string;
      assert.equal(
        note
          .trimEnd()
          .split('\n')
          .filter((l) => l.startsWith('\u2014 ')).length,
        3,
      );
      assert.equal((await sth(third.node)).status, 200);
      assert.deepEqual(third.lines, []);
    } finally {
      await third.node.close();
    }
  });

  it('a log with an entry the chain never published is reported once, and the node keeps going', async () => {
    const dataDir = path.join(root, 'damaged');
    await mkdir(dataDir, { recursive: true });
    const db = openDatabase(path.join(dataDir, CT_LOG_FILE));
    openCtLog(db, { origin: ctOrigin(CHAIN_ID) }).appendBatch(
      [
        {
          leaf: encodeMerkleTreeLeaf({
            timestamp: 1,
            entry: { type: 'x509', certificate: new Uint8Array([0x30, 0x00]) },
          }),
          extraData: encodeCertificateChain([]),
        },
      ],
      1,
    );
    db.close();
    const { node, registry, lines } = await observer('damaged');
    try {
      const height = chain.node.store.blocks.latestHeight() as number;
      node.committed(height);
      assert.equal(node.log.size, 2, 'the published certificate is still appended');
      assert.equal(await splitViews(registry), 1);
      assert.equal(lines.length, 1);
      const line = JSON.parse(lines[0] as string) as Record<string, unknown>;
      assert.equal(line.msg, 'ct log differs from the quorum-signed consensus tree head');
      assert.equal(line.localSize, 2);
      assert.equal(line.consensusSize, 1);
      assert.equal(line.consensusRoot, toHex(treeHeadRoot(chain.state().treeHead())));
      // The same difference at the next commit is not counted again.
      node.committed(height);
      assert.equal(await splitViews(registry), 1);
      assert.equal(lines.length, 1);
    } finally {
      await node.close();
    }
  });
});

/** A one-CertID OCSP request (SHA-1, no nonce) for `serial` of `issuer` (RFC 6960 §4.1.1). */
function ocspRequest(issuer: Issuer, serial: Uint8Array): Uint8Array {
  const { nameHash, keyHash } = issuerHashes(issuer, 'sha1');
  const sha1 = tlv(0x30, Uint8Array.of(0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00));
  const integer = (serial[0] ?? 0) >= 0x80 ? concatBytes(Uint8Array.of(0), serial) : serial;
  const certId = tlv(
    0x30,
    concatBytes(sha1, octetString(nameHash), octetString(keyHash), tlv(0x02, integer)),
  );
  return tlv(0x30, tlv(0x30, tlv(0x30, tlv(0x30, certId))));
}

/**
 * Every GeneralizedTime (OCSP) or UTCTime (CRL) in `der`, in order: an OCSP `good` answer's are
 * producedAt, thisUpdate, nextUpdate; a CRL's start with thisUpdate, nextUpdate.
 */
function derTimes(der: Uint8Array): Date[] {
  const found: Date[] = [];
  for (let i = 0; i + 2 < der.length; i++) {
    const length = der[i + 1];
    if (!((der[i] === 0x18 && length === 15) || (der[i] === 0x17 && length === 13))) continue;
    const text = Buffer.from(der.subarray(i + 2, i + 2 + (length as number))).toString('latin1');
    const match = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
    if (match === null) continue;
    const [, y, mo, d, h, mi, se] = match as unknown as string[];
    const year = y!.length === 2 ? 2000 + Number(y) : Number(y);
    found.push(
      new Date(Date.UTC(year, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se))),
    );
    i += 1 + (length as number);
  }
  return found;
}

/**
 * OCSP answers and the CRL are only as fresh as the committed state they are read from
 * (docs/ca.md, "OCSP"): thisUpdate is the last committed block's time, not the wall clock, and a
 * node whose last block is older than `ca.maxBlockAgeSeconds` answers OCSP `tryLater` and serves
 * no CRL (HTTP 503) — it may not have applied a revocation the cluster has committed.
 */
describe('ca-node: OCSP and CRL carry the last committed block time', () => {
  let fixture: CaFixture;
  let chain: CaModuleNode;
  let root: string;
  let serial: Uint8Array;

  before(async () => {
    fixture = await createCaFixture();
    chain = await fixture.openCaNode();
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-ca-node-fresh-'));
    await issueAndPublish(fixture, chain, `fresh.${GRANTED_ZONE}`);
    const published = chain.state().published(chain.node.store.blocks.latestHeight() as number);
    assert.ok(published !== null && published.serials.length === 1);
    serial = published.serials[0] as Uint8Array;
  });

  after(async () => {
    await chain?.close();
    await rm(root, { recursive: true, force: true });
  });

  /** val-b's node, its clock `now` (ms), serving its CT listener (OCSP and CRL) on loopback. */
  async function issuingNode(
    name: string,
    now: () => number,
    blocks: boolean = true,
  ): Promise<{ node: CaNode; registry: Registry }> {
    const dataDir = path.join(root, name);
    await mkdir(dataDir, { recursive: true });
    const { keys } = fixture.ca.validators['val-b']!;
    const keyFile = path.join(dataDir, 'ca-intermediate.key');
    await writeKeyFile(keyFile, { kind: 'p256', keys: keys.ecdsa });
    const bundleFile = path.join(dataDir, 'trust-bundle.json');
    await writeFile(bundleFile, encodeTrustBundle(fixture.ca.bundle));
    const registry = new Registry();
    const node = await startCaNode({
      config: {
        name: 'val-b',
        dataDir,
        ca: { intermediateKeyFile: keyFile, trustBundleFile: bundleFile },
        ct: { http: { host: '127.0.0.1', port: 0 } },
      } as unknown as ValidatorNodeConfig,
      genesis: { chainId: CHAIN_ID } as GenesisDocument,
      ca: fixture.config,
      state: { get: (key) => chain.node.store.state.get(key) },
      ...(blocks ? { blocks: chain.node.store.blocks } : {}),
      now,
      query: (request) => chain.node.app.query(request),
      identity: {
        ed25519: fixture.validators['val-b'].privateKey,
        falconPublicKey: keys.falcon.publicKey,
        falconSecretKey: keys.falcon.secretKey,
      },
      submit: () => Promise.resolve({ ok: true }),
      registry,
      logger: createLogger({ node: name }, () => undefined, 'error'),
      falcon: fixture.ca.falcon,
    });
    return { node, registry };
  }

  const lastBlockTime = (): number =>
    chain.node.store.blocks.byHeight(chain.node.store.blocks.latestHeight() as number)!.timeMs;
  const issuer = (): Issuer => fixture.config.issuers.find((i) => i.name === 'val-b')!.issuer;
  const tryLater = ocspErrorResponse(OcspResponseStatus.tryLater);

  it('a fresh node signs thisUpdate = the block time, producedAt = its clock', async () => {
    const blockTime = lastBlockTime();
    const now = blockTime + 90_000;
    const { node } = await issuingNode('fresh', () => now);
    try {
      const answer = node.ocsp!(ocspRequest(issuer(), serial));
      assert.equal(answer.outcome, 'good');
      const [producedAt, thisUpdate, nextUpdate] = derTimes(answer.response);
      assert.equal(thisUpdate?.getTime(), Math.floor(blockTime / 1000) * 1000);
      assert.equal(nextUpdate?.getTime(), Math.floor(blockTime / 1000) * 1000 + 3_600_000);
      assert.equal(producedAt?.getTime(), Math.floor(now / 1000) * 1000);

      const response = await fetch(`${node.ctUrl!}/crl`);
      assert.equal(response.status, 200);
      const crl = new Uint8Array(await response.arrayBuffer());
      const [crlThisUpdate, crlNextUpdate] = derTimes(crl);
      assert.equal(crlThisUpdate?.getTime(), Math.floor(blockTime / 1000) * 1000);
      assert.equal(crlNextUpdate?.getTime(), Math.floor(blockTime / 1000) * 1000 + 86_400_000);
    } finally {
      await node.close();
    }
  });

  it('a node whose last block is 2 h old answers tryLater and serves no CRL', async () => {
    const { node, registry } = await issuingNode('stale', () => lastBlockTime() + 7_200_000);
    try {
      const answer = node.ocsp!(ocspRequest(issuer(), serial));
      assert.equal(answer.outcome, 'try_later');
      assert.deepEqual([...answer.response], [...tryLater]);
      assert.equal(node.crl(), null);

      const over = await fetch(`${node.ctUrl!}/ocsp`, {
        method: 'POST',
        headers: { 'content-type': 'application/ocsp-request' },
        body: ocspRequest(issuer(), serial),
      });
      assert.equal(over.status, 200);
      assert.deepEqual([...new Uint8Array(await over.arrayBuffer())], [...tryLater]);
      const crl = await fetch(`${node.ctUrl!}/crl`);
      assert.equal(crl.status, 503);
      assert.equal(crl.headers.get('retry-after'), '30');
      await crl.arrayBuffer();
      const metrics = await registry.getSingleMetricAsString('hypermesh_ct_http_requests_total');
      assert.match(metrics, /endpoint="ocsp",outcome="try_later"} 1/);
      assert.match(metrics, /endpoint="crl",outcome="unavailable"} 1/);
    } finally {
      await node.close();
    }
  });

  it('the bound is the configured age: just inside answers, just past it does not', async () => {
    let now = lastBlockTime() + OCSP_MAX_BLOCK_AGE_MS;
    const { node } = await issuingNode('bound', () => now);
    try {
      assert.equal(node.ocsp!(ocspRequest(issuer(), serial)).outcome, 'good');
      assert.ok(node.crl() !== null);
      now += 1;
      assert.equal(node.ocsp!(ocspRequest(issuer(), serial)).outcome, 'try_later');
      assert.equal(node.crl(), null, 'a cached CRL is not served from a stale node either');
    } finally {
      await node.close();
    }
  });

  it('without the block store no block time is known: tryLater and no CRL', async () => {
    const { node } = await issuingNode('no-blocks', () => lastBlockTime(), false);
    try {
      assert.equal(node.ocsp!(ocspRequest(issuer(), serial)).outcome, 'try_later');
      assert.equal(node.crl(), null);
    } finally {
      await node.close();
    }
  });
});

/** The cRLNumber extension's value (OID 2.5.29.20, an INTEGER in an OCTET STRING) of `crl`. */
function crlNumberOf(crl: Uint8Array): bigint {
  const oid = [0x06, 0x03, 0x55, 0x1d, 0x14];
  const at = Buffer.from(crl).indexOf(Buffer.from(oid));
  assert.ok(at >= 0, 'the CRL has a cRLNumber');
  // OID, OCTET STRING (04 len), INTEGER (02 len value).
  const octets = at + oid.length;
  assert.equal(crl[octets], 0x04);
  const integer = octets + 2;
  assert.equal(crl[integer], 0x02);
  const length = crl[integer + 1] as number;
  return BigInt(`0x${toHex(crl.subarray(integer + 2, integer + 2 + length))}`);
}

/**
 * RFC 5280 §5.2.3 (docs/ca.md, "Revocation lists"): every new CRL carries a larger cRLNumber,
 * also when two blocks in one second each commit a revocation (blocks with work come ~200 ms
 * apart): the second CRL lists one more serial, so it needs a new number.
 */
describe('ca-node: the cRLNumber grows with every new CRL', () => {
  let fixture: CaFixture;
  let chain: CaModuleNode;
  let root: string;

  before(async () => {
    fixture = await createCaFixture();
    chain = await fixture.openCaNode();
    root = await mkdtemp(path.join(tmpdir(), 'hypermesh-ca-node-crl-'));
  });

  after(async () => {
    await chain?.close();
    await rm(root, { recursive: true, force: true });
  });

  /** The serial val-b published for `dnsName`. */
  async function publishedSerial(dnsName: string): Promise<Uint8Array> {
    await issueAndPublish(fixture, chain, dnsName);
    const published = chain.state().published(chain.node.store.blocks.latestHeight() as number);
    assert.ok(published !== null && published.serials.length === 1);
    return published.serials[0] as Uint8Array;
  }

  it('two blocks in one second, each with a revocation: two CRLs, the second numbered higher', async () => {
    const first = await publishedSerial(`crl-1.${GRANTED_ZONE}`);
    const second = await publishedSerial(`crl-2.${GRANTED_ZONE}`);
    // Block times 200 ms apart, the next block (the first revocation) at 12:00:00.100.
    const revocationHeight = (chain.node.store.blocks.latestHeight() as number) + 1;
    const firstRevocationTime = Date.parse('2026-03-01T12:00:00.100Z');
    const timeOf = (height: number): number =>
      firstRevocationTime + (height - revocationHeight) * 200;
    const blocks = {
      latestHeight: () => chain.node.store.blocks.latestHeight(),
      byHeight: (height: number) => ({ timeMs: timeOf(height) }),
    };
    const now = (): number => timeOf(chain.node.store.blocks.latestHeight() as number) + 50;

    const dataDir = path.join(root, 'val-b');
    await mkdir(dataDir, { recursive: true });
    const { keys } = fixture.ca.validators['val-b']!;
    const keyFile = path.join(dataDir, 'ca-intermediate.key');
    await writeKeyFile(keyFile, { kind: 'p256', keys: keys.ecdsa });
    const bundleFile = path.join(dataDir, 'trust-bundle.json');
    await writeFile(bundleFile, encodeTrustBundle(fixture.ca.bundle));
    const node = await startCaNode({
      config: {
        name: 'val-b',
        dataDir,
        ca: { intermediateKeyFile: keyFile, trustBundleFile: bundleFile },
        ct: null,
      } as unknown as ValidatorNodeConfig,
      genesis: { chainId: CHAIN_ID } as GenesisDocument,
      ca: fixture.config,
      state: { get: (key) => chain.node.store.state.get(key) },
      blocks,
      now,
      query: (request) => chain.node.app.query(request),
      identity: {
        ed25519: fixture.validators['val-b'].privateKey,
        falconPublicKey: keys.falcon.publicKey,
        falconSecretKey: keys.falcon.secretKey,
      },
      submit: () => Promise.resolve({ ok: true }),
      registry: new Registry(),
      logger: createLogger({ node: 'val-b' }, () => undefined, 'error'),
      falcon: fixture.ca.falcon,
    });
    try {
      const before = node.crl();
      assert.ok(before !== null);

      chain.block([caTx(fixture.operator, caRevokeBody(first, 1))]);
      assert.equal(chain.state().revokedBy('val-b').length, 1);
      const one = node.crl();
      assert.ok(one !== null);

      chain.block([caTx(fixture.operator, caRevokeBody(second, 4))]);
      assert.equal(chain.node.store.blocks.latestHeight(), revocationHeight + 1);
      assert.equal(chain.state().revokedBy('val-b').length, 2);
      const two = node.crl();
      assert.ok(two !== null);

      // Both revocation CRLs carry the same thisUpdate second, yet list different serials.
      const [oneThisUpdate] = derTimes(one);
      const [twoThisUpdate] = derTimes(two);
      assert.equal(oneThisUpdate?.getTime(), Date.parse('2026-03-01T12:00:00Z'));
      assert.equal(twoThisUpdate?.getTime(), oneThisUpdate?.getTime());
      assert.notDeepEqual(one, two);
      assert.ok(crlNumberOf(before) < crlNumberOf(one), 'a revocation gives a new number');
      assert.ok(
        crlNumberOf(one) < crlNumberOf(two),
        `the second CRL's number ${crlNumberOf(two)} exceeds the first's ${crlNumberOf(one)}`,
      );
      // The same state gives the same CRL (no new number without a change).
      assert.deepEqual(node.crl(), two);

      if (SKIP_WITHOUT_OPENSSL === false) {
        const issuerFile = path.join(dataDir, 'val-b.pem');
        await writeFile(issuerFile, derToPem(issuer('val-b').certificate));
        for (const [name, crl] of [
          ['one', one],
          ['two', two],
        ] as const) {
          const crlFile = path.join(dataDir, `${name}.crl`);
          await writeFile(crlFile, crl);
          const read = runOpenssl([
            'crl',
            '-inform',
            'DER',
            '-in',
            crlFile,
            '-CAfile',
            issuerFile,
            '-noout',
            '-text',
          ]);
          assert.equal(read.status, 0, read.output);
          assert.match(read.output, /verify OK/);
          assert.match(read.output, new RegExp(`CRL Number:\\s*\\n\\s*${crlNumberOf(crl)}\\b`));
        }
      }
    } finally {
      await node.close();
    }
  });

  const issuer = (name: string): Issuer =>
    fixture.config.issuers.find((i) => i.name === name)!.issuer;
});
