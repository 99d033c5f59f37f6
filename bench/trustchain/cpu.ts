/**
 * The in-process baseline of the trustchain benchmark: what one certificate costs in CPU on this
 * machine, measured with the CA core the nodes run (src/trustchain/ca/), no network and no
 * consensus. A one-validator genesis ceremony gives a real intermediate (P-256 key, FALCON-1024
 * key); then, for blocks of `blockSize` fresh P-256 CSRs:
 *
 * - `parseMs`: `parseCertificateRequest` per request (CSR decode + ECDSA signature check +
 *   names), what a node does at admission, again at execution and when it rebuilds a batch;
 * - `issueMs`: `issueBlock` per certificate (leaves, batch Merkle tree, one FALCON-1024 batch
 *   signature per block, one P-256 signature per certificate): the publishing issuer's work;
 * - `checkMs`: `checkBlockCertificates` per certificate (FALCON batch verify per block, TBS rebuilt
 *   and P-256 verify per certificate): every validator's check of a publication.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { toHex } from '../../src/crypto/bytes.js';
import { defaultFalcon } from '../../src/crypto/falcon.js';
import { createDeterministicSigner } from '../../src/trustchain/ca/certificate.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import { createValidatorCaRequest, runGenesisCeremony } from '../../src/trustchain/ca/hierarchy.js';
import {
  checkBlockCertificates,
  issueBlock,
  parseIssuer,
  prepareBlock,
  type BlockIssuanceItem,
} from '../../src/trustchain/ca/issue.js';
import {
  parseCertificateRequest,
  type CertificateRequestInput,
} from '../../src/trustchain/ca/request.js';

export interface CertificateCpuCost {
  readonly certificates: number;
  readonly blockSize: number;
  /** Milliseconds per certificate. */
  readonly parseMs: number;
  readonly issueMs: number;
  readonly checkMs: number;
}

const CLUSTER = 'bench-cpu';

/** `blocks` blocks of `blockSize` certificates, each step timed over all of them. */
export async function measureCertificateCpu(options: {
  readonly blocks: number;
  readonly blockSize: number;
}): Promise<CertificateCpuCost> {
  const falcon = defaultFalcon();
  const { request, keys } = await createValidatorCaRequest({ name: 'node-1', falcon });
  const ceremony = await runGenesisCeremony({
    cluster: CLUSTER,
    chainId: CLUSTER,
    time: new Date(Date.now() - 86_400_000),
    passphrase: toHex(new Uint8Array(randomBytes(16))),
    validators: [request],
    // The root key files are thrown away: the cheapest scrypt the key file format accepts.
    scrypt: { N: 1024, r: 8, p: 1 },
    falcon,
  });
  const entry = ceremony.bundle.validators[0];
  if (entry === undefined) throw new Error('the ceremony issued no intermediate');
  const issuer = parseIssuer(entry.certificate);
  const signer = createDeterministicSigner(keys.ecdsa.privateKey);
  const account = toHex(new Uint8Array(randomBytes(32)));

  let parseNs = 0n;
  let issueNs = 0n;
  let checkNs = 0n;
  const total = options.blocks * options.blockSize;
  for (let b = 0; b < options.blocks; b++) {
    // Fresh keys and CSRs, made before the clock starts.
    const inputs: CertificateRequestInput[] = [];
    for (let i = 0; i < options.blockSize; i++) {
      const uri = `spiffe://${CLUSTER}/account/${account}/cpu-${b}-${i}`;
      const privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      inputs.push({ profile: 'service', csr: createCsr({ privateKey, uris: [uri] }), uris: [uri] });
    }
    let start = process.hrtime.bigint();
    const items: BlockIssuanceItem[] = inputs.map((input) => ({
      txHash: new Uint8Array(randomBytes(32)),
      request: parseCertificateRequest(input, { falcon }),
      lifetimeSeconds: 86_400,
    }));
    parseNs += process.hrtime.bigint() - start;
    const block = {
      chainId: CLUSTER,
      height: b + 1,
      blockTime: Date.now(),
      issuer,
      items,
    };
    start = process.hrtime.bigint();
    const issued = await issueBlock(block, {
      signer,
      falconSecretKey: keys.falcon.secretKey,
      falcon,
    });
    issueNs += process.hrtime.bigint() - start;
    start = process.hrtime.bigint();
    checkBlockCertificates(prepareBlock(block), issued.batchSignature, issued.certificates, falcon);
    checkNs += process.hrtime.bigint() - start;
  }
  const perCertificate = (ns: bigint): number => Number(ns) / 1e6 / total;
  return {
    certificates: total,
    blockSize: options.blockSize,
    parseMs: perCertificate(parseNs),
    issueMs: perCertificate(issueNs),
    checkMs: perCertificate(checkNs),
  };
}
