import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import { concatBytes, toHex } from '../../src/crypto/bytes.js';
import { octetString, tlv } from '../../src/crypto/der.js';
import { derToPem } from '../../src/crypto/x509.js';
import { startCtHttpServer, type CtHttpServer } from '../../src/faces/ct-http.js';
import {
  createOcspResponder,
  OCSP_MAX_BLOCK_AGE_MS,
  OCSP_MAX_REQUESTS_PER_CLIENT_PER_SECOND,
  OCSP_RESPONSE_TYPE,
} from '../../src/faces/ocsp-http.js';
import { createDeterministicSigner } from '../../src/trustchain/ca/certificate.js';
import { issueBlock, parseCertificateRequest, createCsr } from '../../src/trustchain/ca/index.js';
import { readTbs, splitCertificate } from '../../src/trustchain/ca/certificate.js';
import {
  OcspResponseStatus,
  issuerHashes,
  parseOcspRequest,
  type OcspCertStatus,
} from '../../src/trustchain/ca/ocsp.js';
import { openCtLog } from '../../src/trustchain/ct/index.js';
import {
  CHAIN_ID,
  CLUSTER,
  SKIP_WITHOUT_OPENSSL,
  createTestCa,
  generateKey,
  serviceRequest,
  txHash,
  type TestCa,
} from '../trustchain/ca/fixtures.js';

/**
 * The OCSP responder on the CT HTTP listener: OpenSSL's `ocsp` client asks over POST and GET,
 * verifies the intermediate's signature and the echoed nonce, and reads good / revoked (with
 * reason and time) / unknown; another intermediate's certificate gets `unauthorized`.
 */
describe('OCSP responder (RFC 6960)', () => {
  let ca: TestCa;
  let dir: string;
  let db: Database.Database;
  let server: CtHttpServer;
  let registry: Registry;
  let certificates: readonly Uint8Array[];
  let otherCertificate: Uint8Array;
  const statuses = new Map<string, OcspCertStatus>();
  /** The time of the last committed block the responder answers from (fresh unless a test says). */
  let committedTime: () => number | null = () => Date.now() - 1_000;
  const files = {
    root: '',
    issuer: '',
    other: '',
    good: '',
    revoked: '',
    unknown: '',
    foreign: '',
  };
  const serialOf = (der: Uint8Array): Uint8Array => readTbs(splitCertificate(der).tbs).serial;

  before(async () => {
    ca = await createTestCa(['val-a', 'val-b']);
    dir = mkdtempSync(join(tmpdir(), 'hypermesh-ocsp-'));
    const blockTime = Math.floor(Date.now() / 1000) * 1000;
    const issue = async (name: string, count: number): Promise<readonly Uint8Array[]> => {
      const { keys, issuer } = ca.validators[name]!;
      const block = await issueBlock(
        {
          chainId: CHAIN_ID,
          height: 5,
          blockTime,
          issuer,
          items: Array.from({ length: count }, (_, i) => ({
            txHash: txHash(),
            request:
              i === 0
                ? serviceRequest([`www${i}.example.com`])
                : parseCertificateRequest({
                    profile: 'client',
                    csr: createCsr({ privateKey: generateKey('ed25519') }),
                    uris: [`spiffe://${CLUSTER}/ns/a/app${i}`],
                  }),
            lifetimeSeconds: 3600,
          })),
        },
        {
          signer: createDeterministicSigner(keys.ecdsa.privateKey),
          falconSecretKey: keys.falcon.secretKey,
          falcon: ca.falcon,
        },
      );
      return block.certificates;
    };
    certificates = await issue('val-a', 3);
    otherCertificate = (await issue('val-b', 1))[0]!;
    statuses.set(toHex(serialOf(certificates[0]!)), { status: 'good' });
    statuses.set(toHex(serialOf(certificates[1]!)), {
      status: 'revoked',
      time: new Date('2026-03-01T12:00:00Z'),
      reason: 1,
    });
    const write = (name: string, der: Uint8Array): string => {
      const file = join(dir, name);
      writeFileSync(file, derToPem(der));
      return file;
    };
    files.root = write('root.pem', ca.bundle.root.certificate);
    files.issuer = write('val-a.pem', ca.validators['val-a']!.issuer.certificate);
    files.other = write('val-b.pem', ca.validators['val-b']!.issuer.certificate);
    files.good = write('good.pem', certificates[0]!);
    files.revoked = write('revoked.pem', certificates[1]!);
    files.unknown = write('unknown.pem', certificates[2]!);
    files.foreign = write('foreign.pem', otherCertificate);

    db = new Database(':memory:');
    registry = new Registry();
    const { keys, issuer } = ca.validators['val-a']!;
    server = await startCtHttpServer({
      log: openCtLog(db, { origin: 'test/ct/log' }),
      host: '127.0.0.1',
      port: 0,
      roots: () => [ca.bundle.root.certificate],
      registry,
      ocsp: createOcspResponder({
        issuer,
        signer: createDeterministicSigner(keys.ecdsa.privateKey),
        status: (serial) => statuses.get(toHex(serial)) ?? { status: 'unknown' },
        committedTime: () => committedTime(),
      }),
    });
  });

  after(async () => {
    await server?.close();
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // The server runs in this process: OpenSSL must run asynchronously.
  const openssl = (args: readonly string[]): Promise<{ status: number; output: string }> =>
    promisify(execFile)('openssl', args).then(
      ({ stdout, stderr }) => ({ status: 0, output: `${stdout}${stderr}` }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        status: error.code ?? 1,
        output: `${error.stdout ?? ''}${error.stderr ?? ''}`,
      }),
    );
  const ocsp = (cert: string, issuer = files.issuer, extra: string[] = []) =>
    openssl([
      'ocsp',
      '-issuer',
      issuer,
      '-cert',
      cert,
      '-url',
      server.url,
      '-CAfile',
      files.root,
      '-resp_text',
      ...extra,
    ]);

  it(
    'answers good, revoked (reason, time) and unknown, signed and with the nonce echoed',
    { skip: SKIP_WITHOUT_OPENSSL },
    async () => {
      const good = await ocsp(files.good);
      assert.equal(good.status, 0, good.output);
      assert.match(good.output, /Response verify OK/);
      assert.match(good.output, /good\.pem: good/);
      assert.match(good.output, /OCSP Nonce:/);
      assert.match(good.output, /Next Update:/);
      assert.doesNotMatch(good.output, /WARNING/);

      const revoked = await ocsp(files.revoked);
      assert.match(revoked.output, /Response verify OK/);
      assert.match(revoked.output, /revoked\.pem: revoked/);
      assert.match(revoked.output, /Reason: keyCompromise/);
      assert.match(revoked.output, /Revocation Time: Mar {2}1 12:00:00 2026 GMT/);

      const unknown = await ocsp(files.unknown);
      assert.match(unknown.output, /Response verify OK/);
      assert.match(unknown.output, /unknown\.pem: unknown/);

      // SHA-256 CertIDs, without a nonce, at /ocsp.
      const sha256 = await openssl([
        'ocsp',
        '-sha256',
        '-issuer',
        files.issuer,
        '-cert',
        files.good,
        '-no_nonce',
        '-url',
        `${server.url}/ocsp`,
        '-CAfile',
        files.root,
      ]);
      assert.match(sha256.output, /Response verify OK/);
      assert.match(sha256.output, /good\.pem: good/);
    },
  );

  it(
    "refuses another intermediate's certificate as unauthorized",
    { skip: SKIP_WITHOUT_OPENSSL },
    async () => {
      const refused = await ocsp(files.foreign, files.other);
      assert.match(refused.output, /unauthorized/i);
    },
  );

  it(
    'answers tryLater, unsigned, while the last committed block is older than the bound',
    { skip: SKIP_WITHOUT_OPENSSL },
    async () => {
      committedTime = () => Date.now() - 7_200_000;
      try {
        const stale = await ocsp(files.good);
        assert.match(stale.output, /Responder Error: trylater \(3\)/);
        assert.doesNotMatch(stale.output, /good\.pem: good/);
      } finally {
        committedTime = () => Date.now() - 1_000;
      }
      const metrics = await registry.getSingleMetricAsString('hypermesh_ct_http_requests_total');
      assert.match(metrics, /endpoint="ocsp",outcome="try_later"} 1/);
      assert.match((await ocsp(files.good)).output, /good\.pem: good/);
    },
  );

  it('signs thisUpdate = the block time, nextUpdate from it, producedAt = the clock', () => {
    const { keys, issuer } = ca.validators['val-a']!;
    const blockTime = Date.parse('2026-03-01T12:00:00.750Z');
    const now = blockTime + 42_000;
    const request = ocspRequestFor(certificates[0]!);
    const answerAt = (committed: number | null, clock: number) =>
      createOcspResponder({
        issuer,
        signer: createDeterministicSigner(keys.ecdsa.privateKey),
        status: () => ({ status: 'good' }),
        committedTime: () => committed,
        now: () => clock,
      })(request);
    const fresh = answerAt(blockTime, now);
    assert.equal(fresh.outcome, 'good');
    assert.deepEqual(generalizedTimes(fresh.response), [
      '20260301120042Z', // producedAt: the clock
      '20260301120000Z', // thisUpdate: the block time
      '20260301130000Z', // nextUpdate: thisUpdate + OCSP_VALIDITY_MS
    ]);
    const tryLater = [0x30, 0x03, 0x0a, 0x01, OcspResponseStatus.tryLater];
    const stale = answerAt(blockTime, blockTime + 2 * 3_600_000);
    assert.equal(stale.outcome, 'try_later');
    assert.deepEqual([...stale.response], tryLater);
    assert.equal(answerAt(blockTime, blockTime + OCSP_MAX_BLOCK_AGE_MS).outcome, 'good');
    assert.equal(answerAt(blockTime, blockTime + OCSP_MAX_BLOCK_AGE_MS + 1).outcome, 'try_later');
    const nothing = answerAt(null, now);
    assert.equal(nothing.outcome, 'try_later');
    assert.deepEqual([...nothing.response], tryLater);
  });

  it('answers repeated nonce-less requests from a cache, and signs at most a bound a second', () => {
    const { keys, issuer } = ca.validators['val-a']!;
    const blockTime = Date.UTC(2026, 2, 1, 12, 0, 0);
    let clock = blockTime + 1_000;
    let committed = blockTime;
    let signatures = 0;
    const signer = createDeterministicSigner(keys.ecdsa.privateKey);
    const respond = createOcspResponder({
      issuer,
      signer: {
        publicKey: signer.publicKey,
        deterministic: signer.deterministic,
        sign: (tbs) => {
          signatures++;
          return signer.sign(tbs);
        },
      },
      status: () => ({ status: 'good' }),
      committedTime: () => committed,
      now: () => clock,
      maxSignedPerSecond: 3,
    });
    const plain = ocspRequestFor(certificates[0]!);
    const first = respond(plain);
    assert.equal(first.outcome, 'good');
    assert.deepEqual(respond(plain), first, 'the same answer, from the cache');
    assert.equal(signatures, 1);
    // Requests with nonces are signed each time (the nonce is echoed), up to the bound.
    const withNonce = (n: number) => ocspRequestFor(certificates[0]!, Uint8Array.of(n, n, n, n));
    assert.equal(respond(withNonce(1)).outcome, 'good');
    assert.equal(respond(withNonce(2)).outcome, 'good');
    assert.equal(signatures, 3);
    const refused = respond(withNonce(3));
    assert.equal(refused.outcome, 'try_later');
    assert.equal(signatures, 3, 'nothing signed beyond the bound');
    assert.deepEqual(respond(plain), first, 'the cache still answers');
    clock += 1_000;
    assert.equal(respond(withNonce(3)).outcome, 'good', 'the next second signs again');
    // A new block: the cache is for the block it was signed from.
    committed += 1_000;
    const next = respond(plain);
    assert.equal(next.outcome, 'good');
    assert.notDeepEqual(next.response, first.response);
    assert.equal(signatures, 5);
  });

  it('computes the issuer hashes once per algorithm, not once per request', () => {
    const { keys, issuer } = ca.validators['val-a']!;
    // Computing the hashes reads the issuer's subject name; nothing else on this path does.
    let computed = 0;
    const counted = new Proxy(issuer, {
      get(target, key) {
        if (key === 'subjectName') computed++;
        return Reflect.get(target, key, target) as unknown;
      },
    });
    const respond = createOcspResponder({
      issuer: counted,
      signer: createDeterministicSigner(keys.ecdsa.privateKey),
      status: () => ({ status: 'good' }),
      committedTime: () => Date.UTC(2026, 2, 1, 12, 0, 0),
      now: () => Date.UTC(2026, 2, 1, 12, 0, 1),
    });
    const plain = ocspRequestFor(certificates[0]!);
    const foreign = ocspRequestFor(otherCertificate, undefined, 'val-b');
    for (let i = 0; i < 100; i++) {
      assert.equal(respond(plain).outcome, 'good');
      assert.equal(respond(foreign).outcome, 'unauthorized');
    }
    assert.equal(computed, 1, 'SHA-1 hashes of the one issuer');
  });

  it('answers cache hits whatever the flood, and meters the rest per client, then in all', () => {
    const { keys, issuer } = ca.validators['val-a']!;
    let clock = Date.UTC(2026, 2, 1, 12, 0, 1);
    let signatures = 0;
    const signer = createDeterministicSigner(keys.ecdsa.privateKey);
    const respond = createOcspResponder({
      issuer,
      signer: {
        publicKey: signer.publicKey,
        deterministic: signer.deterministic,
        sign: (tbs) => {
          signatures++;
          return signer.sign(tbs);
        },
      },
      status: () => ({ status: 'good' }),
      committedTime: () => Date.UTC(2026, 2, 1, 12, 0, 0),
      now: () => clock,
      maxRequestsPerSecond: 6,
      maxRequestsPerClientPerSecond: 2,
    });
    const plain = ocspRequestFor(certificates[0]!);
    const malformed = Uint8Array.of(0x30, 0x00);
    const foreign = ocspRequestFor(otherCertificate, undefined, 'val-b');
    const tryLater = [...respondedTryLater()];
    const first = respond(plain, '192.0.2.1');
    assert.equal(first.outcome, 'good');
    // Two requests the cache cannot answer a second per client: a third is refused unread.
    assert.equal(respond(malformed, '192.0.2.1').outcome, 'malformed');
    const refused = respond(foreign, '192.0.2.1');
    assert.equal(refused.outcome, 'try_later');
    assert.deepEqual([...refused.response], tryLater);
    // A cache hit is answered to anyone, the flooding client included.
    assert.deepEqual(respond(plain, '192.0.2.1'), first, 'from the cache');
    assert.deepEqual(respond(plain, '192.0.2.2'), first, 'from the cache');
    // An IPv6 client counts with its /64, an IPv4-mapped one as the IPv4 address.
    assert.equal(respond(malformed, '2001:db8:1:2::1').outcome, 'malformed');
    assert.equal(respond(malformed, '2001:db8:1:2:ffff::2').outcome, 'malformed');
    assert.equal(respond(malformed, '2001:db8:1:2::3').outcome, 'try_later');
    assert.equal(respond(malformed, '::ffff:192.0.2.1').outcome, 'try_later');
    // Six requests read this second in all: a seventh is refused whoever sends it.
    assert.equal(respond(malformed, '192.0.2.3').outcome, 'malformed');
    assert.equal(respond(foreign, '192.0.2.4').outcome, 'unauthorized');
    assert.equal(respond(malformed, '192.0.2.5').outcome, 'try_later');
    assert.equal(
      respond(ocspRequestFor(certificates[0]!, Uint8Array.of(1, 2, 3, 4)), '192.0.2.5').outcome,
      'try_later',
    );
    assert.deepEqual(respond(plain, '192.0.2.5'), first, 'the cache still answers');
    assert.equal(signatures, 1);
    clock += 1_000;
    assert.equal(respond(foreign, '192.0.2.1').outcome, 'unauthorized', 'the next second reads');
  });

  it('answers from the block before while a flood from many addresses takes the bounds at a new block', () => {
    const { keys, issuer } = ca.validators['val-a']!;
    let blockTime = Date.UTC(2026, 2, 1, 12, 0, 0);
    let clock = blockTime + 1_000;
    let revoked = false;
    const respond = createOcspResponder({
      issuer,
      signer: createDeterministicSigner(keys.ecdsa.privateKey),
      status: () =>
        revoked ? { status: 'revoked', time: new Date(blockTime), reason: 1 } : { status: 'good' },
      committedTime: () => blockTime,
      now: () => clock,
    });
    const plain = ocspRequestFor(certificates[0]!);
    const first = respond(plain, '198.51.100.2');
    assert.equal(first.outcome, 'good');
    // A new block: the cache starts empty. 50 addresses × 20 malformed requests take the shared
    // 1,000 reads of this second before the relying party asks again.
    blockTime += 2_000;
    clock = blockTime + 100;
    for (let address = 0; address < 50; address++) {
      for (let i = 0; i < OCSP_MAX_REQUESTS_PER_CLIENT_PER_SECOND; i++) {
        respond(Uint8Array.of(0, 0, 0), `203.0.113.${address}`);
      }
    }
    assert.equal(respond(Uint8Array.of(0, 0, 0), '192.0.2.77').outcome, 'try_later');
    // The previous block's signed answer to these very bytes, still fresh, rather than try-later.
    const again = respond(plain, '198.51.100.2');
    assert.deepEqual(again, first);
    assert.equal(parseResponseStatus(again.response), OcspResponseStatus.successful);
    // A request it never answered gets try-later.
    assert.equal(respond(ocspRequestFor(certificates[1]!), '198.51.100.2').outcome, 'try_later');
    // Revoked in the latest block: the old "good" is never given again.
    revoked = true;
    assert.equal(respond(plain, '198.51.100.2').outcome, 'try_later');
  });

  it('answers a cache hit from one client while another floods malformed requests', () => {
    const { keys, issuer } = ca.validators['val-a']!;
    const respond = createOcspResponder({
      issuer,
      signer: createDeterministicSigner(keys.ecdsa.privateKey),
      status: () => ({ status: 'good' }),
      committedTime: () => Date.UTC(2026, 2, 1, 12, 0, 0),
      now: () => Date.UTC(2026, 2, 1, 12, 0, 1, 500),
    });
    const plain = ocspRequestFor(certificates[0]!);
    const cached = respond(plain, '198.51.100.2');
    assert.equal(cached.outcome, 'good');
    // `GET /ocsp/AAAA` and another issuer's CertIDs, 1,200 of them within the second.
    const garbage = [Uint8Array.of(0, 0, 0), ocspRequestFor(otherCertificate, undefined, 'val-b')];
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 1_200; i++) {
      const { outcome } = respond(garbage[i % 2]!, '203.0.113.7');
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    const again = respond(plain, '198.51.100.2');
    assert.equal(again.outcome, 'good');
    assert.deepEqual(again, cached);
    assert.equal(parseResponseStatus(again.response), OcspResponseStatus.successful);
    // The flooding client got its share, and nothing more.
    assert.equal(outcomes.get('try_later'), 1_200 - OCSP_MAX_REQUESTS_PER_CLIENT_PER_SECOND);
    // A request that must be signed (a nonce) from a third client is signed too.
    const withNonce = respond(
      ocspRequestFor(certificates[0]!, Uint8Array.of(9, 9, 9, 9)),
      '192.0.2.9',
    );
    assert.equal(withNonce.outcome, 'good');
  });

  it('over HTTP, meters by remote address: a flood from one address leaves the others answered', async () => {
    const { keys, issuer } = ca.validators['val-a']!;
    const floodDb = new Database(':memory:');
    const committed = Date.now() - 1_000;
    const own = await startCtHttpServer({
      log: openCtLog(floodDb, { origin: 'test/ct/flood' }),
      host: '127.0.0.1',
      port: 0,
      roots: () => [ca.bundle.root.certificate],
      registry: new Registry(),
      ocsp: createOcspResponder({
        issuer,
        signer: createDeterministicSigner(keys.ecdsa.privateKey),
        status: () => ({ status: 'good' }),
        // One block for the whole test: its answers stay cached.
        committedTime: () => committed,
      }),
    });
    const agents = new Map<string, Agent>();
    const ask = (from: string, path: string, body?: Uint8Array): Promise<Uint8Array> =>
      new Promise((resolve, reject) => {
        let agent = agents.get(from);
        if (agent === undefined) {
          agent = new Agent({ keepAlive: true, maxSockets: 4, localAddress: from });
          agents.set(from, agent);
        }
        const url = new URL(path, own.url);
        const req = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            agent,
            method: body === undefined ? 'GET' : 'POST',
            headers: body === undefined ? {} : { 'content-type': 'application/ocsp-request' },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    try {
      const plain = ocspRequestFor(certificates[0]!);
      const cachedPath = `/ocsp/${encodeURIComponent(Buffer.from(plain).toString('base64'))}`;
      const cached = await ask('127.0.0.2', cachedPath);
      assert.equal(parseResponseStatus(cached), OcspResponseStatus.successful);
      // 127.0.0.1 sends `GET /ocsp/AAAA` 1,200 times, a few at once.
      const statuses = new Map<number, number>();
      for (let sent = 0; sent < 1_200; sent += 8) {
        const answers = await Promise.all(
          Array.from({ length: 8 }, () => ask('127.0.0.1', '/ocsp/AAAA')),
        );
        for (const answer of answers) {
          const status = parseResponseStatus(answer);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }
      assert.ok((statuses.get(OcspResponseStatus.tryLater) ?? 0) > 0, 'the flood is metered');
      // 127.0.0.2 still gets its cached answer, and one that must be signed.
      assert.deepEqual(await ask('127.0.0.2', cachedPath), cached);
      const withNonce = await ask(
        '127.0.0.2',
        '/ocsp',
        ocspRequestFor(certificates[0]!, Uint8Array.of(7, 7, 7, 7)),
      );
      assert.equal(parseResponseStatus(withNonce), OcspResponseStatus.successful);
    } finally {
      for (const agent of agents.values()) agent.destroy();
      await own.close();
      floodDb.close();
    }
  });

  /** The unsigned `tryLater` OCSPResponse (RFC 6960 §4.2.1). */
  function respondedTryLater(): Uint8Array {
    return Uint8Array.of(0x30, 0x03, 0x0a, 0x01, OcspResponseStatus.tryLater);
  }

  /**
   * A one-CertID SHA-1 request for `certificate` of `issuerName` (RFC 6960 §4.1.1), with an
   * RFC 8954 nonce extension when `nonce` is given.
   */
  function ocspRequestFor(
    certificate: Uint8Array,
    nonce?: Uint8Array,
    issuerName = 'val-a',
  ): Uint8Array {
    const { nameHash, keyHash } = issuerHashes(ca.validators[issuerName]!.issuer, 'sha1');
    const sha1 = tlv(0x30, Uint8Array.of(0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00));
    const certId = tlv(
      0x30,
      concatBytes(
        sha1,
        octetString(nameHash),
        octetString(keyHash),
        tlv(0x02, serialOf(certificate)),
      ),
    );
    const requestList = tlv(0x30, tlv(0x30, certId));
    if (nonce === undefined) return tlv(0x30, tlv(0x30, requestList));
    // id-pkix-ocsp-nonce 1.3.6.1.5.5.7.48.1.2, its value an OCTET STRING in the extnValue.
    const oid = Uint8Array.of(0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02);
    const extension = tlv(0x30, concatBytes(oid, octetString(octetString(nonce))));
    const extensions = tlv(0xa2, tlv(0x30, extension));
    return tlv(0x30, tlv(0x30, concatBytes(requestList, extensions)));
  }

  it('answers the GET form and malformed requests over HTTP', async () => {
    const request = await opensslRequest();
    if (request !== null) {
      parseOcspRequest(request);
      const answer = await fetch(
        `${server.url}/ocsp/${encodeURIComponent(Buffer.from(request).toString('base64'))}`,
      );
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('content-type'), OCSP_RESPONSE_TYPE);
    }
    const bad = await fetch(`${server.url}/ocsp`, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request' },
      body: Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00),
    });
    const body = new Uint8Array(await bad.arrayBuffer());
    assert.deepEqual([...body], [0x30, 0x03, 0x0a, 0x01, OcspResponseStatus.malformedRequest]);
    const wrongType = await fetch(`${server.url}/`, { method: 'POST', body: 'x' });
    assert.equal(wrongType.status, 415);
    const tooLarge = await fetch(`${server.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request' },
      body: new Uint8Array(10_000),
    });
    assert.equal(tooLarge.status, 413);
    const metrics = await registry.getSingleMetricAsString('hypermesh_ct_http_requests_total');
    assert.match(metrics, /endpoint="ocsp",outcome="malformed"/);
    // The CT routes are unchanged.
    assert.equal((await fetch(`${server.url}/ct/v1/get-roots`)).status, 200);
  });

  async function opensslRequest(): Promise<Uint8Array | null> {
    if (SKIP_WITHOUT_OPENSSL !== false) return null;
    const out = join(dir, 'req.der');
    const made = await openssl([
      'ocsp',
      '-issuer',
      files.issuer,
      '-cert',
      files.good,
      '-reqout',
      out,
    ]);
    assert.equal(made.status, 0, made.output);
    return new Uint8Array(readFileSync(out));
  }
});

/** The responseStatus ENUMERATED of an OCSPResponse (RFC 6960 §4.2.1). */
function parseResponseStatus(der: Uint8Array): number {
  // SEQUENCE (short or long form length), then ENUMERATED, length 1.
  const at = (der[1] ?? 0) < 0x80 ? 2 : 2 + ((der[1] ?? 0) & 0x7f);
  assert.deepEqual([der[at], der[at + 1]], [0x0a, 0x01], 'responseStatus ENUMERATED');
  return der[at + 2] ?? -1;
}

/** The GeneralizedTimes (tag 0x18, 15 octets) in `der`, in order. */
function generalizedTimes(der: Uint8Array): string[] {
  const found: string[] = [];
  for (let i = 0; i + 17 <= der.length; i++) {
    if (der[i] !== 0x18 || der[i + 1] !== 15) continue;
    const text = Buffer.from(der.subarray(i + 2, i + 17)).toString('latin1');
    if (!/^\d{14}Z$/.test(text)) continue;
    found.push(text);
    i += 16;
  }
  return found;
}
