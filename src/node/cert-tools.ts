import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { SchemaError, parseInput, uint } from '../codec/schema.js';
import { fromBase64, toBase64, toHex } from '../crypto/bytes.js';
import { defaultFalcon, type FalconBackend } from '../crypto/falcon.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../crypto/merkle.js';
import { parseCertificate } from '../crypto/x509.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import type { NodeRpcClient } from '../consensus/net/index.js';
import { parseTrustBundle, type TrustBundle } from '../trustchain/ca/bundle.js';
import { CaError } from '../trustchain/ca/errors.js';
import { readTbs, splitCertificate } from '../trustchain/ca/certificate.js';
import {
  BATCH_INCLUSION_OID,
  ISSUANCE_REFERENCE_OID,
  decodeBatchInclusion,
  decodeIssuanceReference,
} from '../trustchain/ca/extensions.js';
import type { NodeIdentityKeys } from '../crypto/keyfile.js';
import { createCsr } from '../trustchain/ca/csr.js';
import { proveFalconPossession, type CertificateRequestInput } from '../trustchain/ca/request.js';
import {
  CA_MODULE_NAME,
  CaStateReader,
  GENESIS_CERTIFICATE_HEIGHT,
  TREE_HEAD_KEY,
  caQuery,
  caRenewBody,
  caRequestBody,
  caRevokeBody,
  QuorumCheckpointError,
  type QuorumCheckpointErrorCode,
  certificateLogLeaf,
  compareServedCheckpoint,
  decodeTreeHead,
  findPublishedCertificate,
  treeHeadRoot,
  verifyQuorumCheckpoint,
  type IssuanceStatus,
  type QuorumCheckpoint,
  type VerifiedQuorumCheckpoint,
} from '../trustchain/ca-module/index.js';
import { readCaValue, type CaAnswerCheck } from '../trustchain/ca-module/client.js';
import { decodeBlock, decodeQuorumCertificate } from '../consensus/wire.js';
import {
  certificateKey,
  decodeCertificateRecord,
  decodeRevocation,
  publishedKey,
  revocationKey,
  type RevocationRecord,
} from '../trustchain/ca-module/state.js';
import type { CaValidateResponse } from '../faces/ca-rpc.js';
import { MAX_NOTE_BYTES, encodeMerkleTreeLeaf } from '../trustchain/ct/index.js';
import { blockTimeAndAge } from './block-age.js';
import { CliError } from './cli-error.js';
import { visible } from './io.js';
import { notCommittedReason, submitTransaction } from './tx-submit.js';
import { checkAnsweredHeight, committedRootsOf } from './verified-root.js';

/**
 * What `hypermesh cert` and `hypermesh ct` do (docs/cli.md): submit `ca` transactions through
 * a node and wait for their publication, describe and verify certificates offline, and check a
 * certificate's inclusion in a node's CT log.
 */

/** The trust bundle in a genesis `app.ca` section. */
export function genesisTrustBundle(genesis: GenesisDocument): TrustBundle {
  const section = genesis.app?.[CA_MODULE_NAME];
  const bundle =
    section !== null && typeof section === 'object' && !Array.isArray(section)
      ? (section as { trustBundle?: unknown }).trustBundle
      : undefined;
  if (bundle === undefined) {
    throw new CliError(
      'the genesis has no app.ca section: this cluster runs no certificate authority',
    );
  }
  try {
    return parseTrustBundle(JSON.stringify(bundle));
  } catch (error) {
    throw new CliError(`the genesis trust bundle does not parse: ${(error as Error).message}`);
  }
}

export type SubjectKeyType = 'p256' | 'ed25519' | 'rsa';

export function generateSubjectKey(type: SubjectKeyType): KeyObject {
  if (type === 'p256') return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  if (type === 'ed25519') return generateKeyPairSync('ed25519').privateKey;
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

/**
 * The key parts of a request whose certificate is a STOQ identity (`cert request
 * --stoq-identity`, docs/ca.md "Revocation in STOQ"): a CSR for the identity's Ed25519 key and
 * its FALCON-1024 public key with the proof of possession over that CSR's key.
 */
export async function stoqIdentityRequestParts(
  keys: NodeIdentityKeys,
  falcon: FalconBackend = defaultFalcon(),
): Promise<Required<Pick<CertificateRequestInput, 'csr' | 'falcon'>>> {
  const spki = new Uint8Array(
    createPublicKey(keys.ed25519.privateKey).export({ format: 'der', type: 'spki' }),
  );
  return {
    csr: createCsr({ privateKey: keys.ed25519.privateKey }),
    falcon: {
      publicKey: keys.falcon.publicKey,
      proof: await proveFalconPossession(spki, keys.falcon.secretKey, falcon),
    },
  };
}

/**
 * The check every `ca` read of another node goes through (`readIntermediates`,
 * `findPublishedCertificate`, `readCaValue`): after the state proof verifies against the root
 * the node names, the answer must be of the height its request pinned (`checkAnsweredHeight`)
 * and its root the one block H's header carries, committed by the validator quorum
 * (verified-root.ts) — else `CommittedRootError` (ROOT_*). A node can root a proof of any value
 * at a root of its own making; only a committed header tells the chain's root. Throws CliError
 * when `client` carries no root checker (`withCommittedRoots`; operator sessions' clients do).
 */
export function committedCaCheck(client: NodeRpcClient): CaAnswerCheck {
  const roots = committedRootsOf(client);
  return async (request, response) => {
    checkAnsweredHeight(request.height, response.height);
    await roots.check(response.height, response.stateRoot);
  };
}

/** The `ca` value at `key` (module-relative) read with `request`, proven to a committed root. */
export function readCommittedCaValue(
  client: NodeRpcClient,
  request: QueryRequest,
  key: Uint8Array,
): Promise<{ readonly value: Uint8Array | null; readonly height: number | null }> {
  return readCaValue((r) => client.query(r), request, key, committedCaCheck(client));
}

/** How often the outcome is asked while waiting: the node API has no subscription. */
const POLL_MS = 200;

async function submitCa(options: {
  client: NodeRpcClient;
  genesis: GenesisDocument;
  privateKey: KeyObject;
  body: Uint8Array;
  timeoutMs: number;
}): Promise<{ txHash: string; height: number }> {
  const outcome = await submitTransaction({ ...options, module: CA_MODULE_NAME, wait: true });
  if (!outcome.admitted) {
    throw new CliError(`the node refused the transaction: ${outcome.code}: ${outcome.message}`, 1);
  }
  if (outcome.status.status !== 'committed') {
    throw new CliError(
      `tx ${outcome.txHash} ${notCommittedReason(outcome.status, options.timeoutMs)}`,
      1,
    );
  }
  if (outcome.status.code !== 0) {
    throw new CliError(
      `tx ${outcome.txHash} refused at height ${outcome.status.height}: ${outcome.status.log}`,
      1,
    );
  }
  return { txHash: outcome.txHash, height: outcome.status.height };
}

export type PublishedCertificate = Extract<IssuanceStatus, { status: 'published' }> & {
  readonly txHash: string;
};

/**
 * Waits until the issuance `txHash` is published. Every answer's state proof is checked, and
 * its root against the committed header of its height (`committedCaCheck`): a node that lies
 * about the certificate or its revocation is refused with `CommittedRootError`, not believed.
 */
export async function waitForPublication(
  client: NodeRpcClient,
  txHash: string,
  timeoutMs: number,
): Promise<PublishedCertificate> {
  const deadline = Date.now() + timeoutMs;
  const hash = Uint8Array.from(Buffer.from(txHash, 'hex'));
  const check = committedCaCheck(client);
  for (;;) {
    const status = await findPublishedCertificate((request) => client.query(request), hash, check);
    if (status.status === 'published') return { ...status, txHash };
    if (Date.now() >= deadline) {
      throw new CliError(
        `certificate of tx ${txHash} not published within ${timeoutMs} ms (status: ${status.status})`,
        1,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export async function requestCertificate(options: {
  client: NodeRpcClient;
  genesis: GenesisDocument;
  privateKey: KeyObject;
  request: CertificateRequestInput;
  timeoutMs: number;
}): Promise<PublishedCertificate> {
  let body: Uint8Array;
  try {
    body = caRequestBody(options.request);
  } catch (error) {
    if (error instanceof CaError)
      throw new CliError(`invalid request: ${error.message} [${error.code}]`);
    throw error;
  }
  const deadline = Date.now() + options.timeoutMs;
  const { txHash } = await submitCa({ ...options, body });
  return waitForPublication(options.client, txHash, Math.max(0, deadline - Date.now()));
}

export async function renewCertificate(options: {
  client: NodeRpcClient;
  genesis: GenesisDocument;
  privateKey: KeyObject;
  serial: Uint8Array;
  lifetimeSeconds?: number;
  /** Only for a genesis bootstrap certificate: the request it is re-issued from (`genesisRenewalRequest`). */
  request?: CertificateRequestInput;
  timeoutMs: number;
}): Promise<PublishedCertificate> {
  let body: Uint8Array;
  try {
    body = caRenewBody(options.serial, options.lifetimeSeconds, options.request);
  } catch (error) {
    if (error instanceof CaError)
      throw new CliError(`invalid renewal request: ${error.message} [${error.code}]`);
    throw error;
  }
  const deadline = Date.now() + options.timeoutMs;
  const { txHash } = await submitCa({ ...options, body });
  return waitForPublication(options.client, txHash, Math.max(0, deadline - Date.now()));
}

export async function revokeCertificate(options: {
  client: NodeRpcClient;
  genesis: GenesisDocument;
  privateKey: KeyObject;
  serial: Uint8Array;
  reason: number;
  proof?: Uint8Array;
  timeoutMs: number;
}): Promise<{ txHash: string; height: number }> {
  return submitCa({
    ...options,
    body: caRevokeBody(options.serial, options.reason, options.proof),
  });
}

/** The serial number of a certificate (16 bytes for TrustChain leaves). */
export function certificateSerialOf(der: Uint8Array): Uint8Array {
  return Uint8Array.from(Buffer.from(parseCertificate(der).serialNumber, 'hex'));
}

/** Human-readable fields of a certificate, TrustChain extensions included. */
export function describeCertificate(der: Uint8Array): Record<string, unknown> {
  const parsed = parseCertificate(der);
  const fields = readTbs(splitCertificate(der).tbs);
  const extension = (oid: string) => fields.extensions.find((e) => e.oid === oid)?.value;
  const reference = extension(ISSUANCE_REFERENCE_OID);
  const inclusion = extension(BATCH_INCLUSION_OID);
  const decodedReference = reference === undefined ? null : decodeIssuanceReference(reference);
  const decodedInclusion = inclusion === undefined ? null : decodeBatchInclusion(inclusion);
  return {
    serial: parsed.serialNumber,
    subject: parsed.subject,
    issuer: parsed.issuer,
    notBefore: parsed.notBefore.toISOString(),
    notAfter: parsed.notAfter.toISOString(),
    dnsNames: parsed.dnsNames,
    ipAddresses: parsed.ipAddresses,
    uris: parsed.uris,
    issuance:
      decodedReference === null
        ? null
        : {
            chainId: decodedReference.chainId,
            height: decodedReference.height,
            txHash: toHex(decodedReference.txHash),
          },
    batch:
      decodedInclusion === null
        ? null
        : {
            leafIndex: decodedInclusion.leafIndex,
            treeSize: decodedInclusion.treeSize,
            rootHash: toHex(decodedInclusion.rootHash),
            signature: decodedInclusion.signature.algorithm,
          },
  };
}

/**
 * The CT log timestamp of a published certificate: the time of the block that published it,
 * read at `height` (default the latest; a caller that read the certificate passes that read's
 * height) and proven to a committed root (`committedCaCheck`).
 */
export async function ctTimestamp(
  client: NodeRpcClient,
  publishedAt: number,
  height?: number,
): Promise<number> {
  return publicationTime((r) => client.query(r), committedCaCheck(client), publishedAt, height);
}

type CaQuery = (request: QueryRequest) => QueryResponse | Promise<QueryResponse>;

/** `ctTimestamp` over any `ca` query whose answers `check` holds to committed roots. */
async function publicationTime(
  query: CaQuery,
  check: CaAnswerCheck,
  publishedAt: number,
  height?: number,
): Promise<number> {
  const { value } = await readCaValue(
    query,
    caQuery('published', u64(publishedAt), height),
    publishedKey(publishedAt),
    check,
  );
  const record =
    value === null ? null : new CaStateReader({ get: () => value }).published(publishedAt);
  if (record === null) throw new CliError(`block ${publishedAt} published no certificates`, 1);
  return record.time;
}

function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

export interface CtInclusion {
  readonly url: string;
  readonly treeSize: number;
  readonly leafIndex: number;
  readonly rootHash: string;
}

/** A tree head whose size and root the caller trusts (the quorum-verified `ca/tree-head`). */
export interface TrustedTreeHead {
  readonly size: number;
  readonly root: Uint8Array;
}

/** RFC 6962 answers are small (an audit path is at most 64 hashes); anything larger is refused. */
const MAX_CT_BODY_BYTES = 64 * 1024;
const DEFAULT_CT_TIMEOUT_MS = 30_000;

/** Standard padded base64 of exactly 32 bytes (a SHA-256 hash), as RFC 6962 §4 sends them. */
const base64Hash = z.string().refine(
  (text) => {
    try {
      return fromBase64(text).length === 32;
    } catch {
      return false;
    }
  },
  { error: 'expected 32 bytes as standard padded base64' },
);

/**
 * `get-sth` (RFC 6962 §4.3). Plain objects rather than strict ones: other RFC 6962/9162 logs may
 * add fields, which are ignored. The signature is only checked to be base64 of a plausible size
 * (a DigitallySigned ECDSA P-256 signature is 8..76 bytes): it is not verified (see below).
 */
const sthSchema = z.object({
  tree_size: uint.max(Number.MAX_SAFE_INTEGER),
  timestamp: uint.max(Number.MAX_SAFE_INTEGER),
  sha256_root_hash: base64Hash,
  tree_head_signature: z
    .string()
    .max(1024)
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, {
      error: 'expected standard padded base64',
    }),
});

/** `get-proof-by-hash` (RFC 6962 §4.5): a tree of at most 2^63 leaves has paths of ≤ 63 hashes. */
const proofSchema = z.object({
  leaf_index: uint.max(Number.MAX_SAFE_INTEGER),
  audit_path: z.array(base64Hash).max(64),
});

/** `get-sth-consistency` (RFC 6962 §4.4). */
const consistencySchema = z.object({ consistency: z.array(base64Hash).max(128) });

/** An HTTP answer whose body is JSON; anything else (no answer, too large, not JSON) is a CliError. */
/**
 * GETs `url` and reads at most `maxBytes` of its body within `timeoutMs` (connection and body
 * together): a node, or anyone on the path, cannot make the CLI hang or hold an endless answer.
 */
async function fetchText(
  url: string,
  timeoutMs: number,
  maxBytes: number,
): Promise<{ status: number; ok: boolean; text: string }> {
  const signal = AbortSignal.timeout(timeoutMs);
  const failed = (error: Error): CliError =>
    new CliError(
      `${url}: ${signal.aborted ? `no answer within ${timeoutMs} ms` : error.message}`,
      1,
    );
  const response = await fetch(url, { signal }).catch((error: Error) => {
    throw failed(error);
  });
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body?.getReader();
  try {
    for (;;) {
      const read = await (reader?.read() ?? { done: true as const, value: undefined });
      if (read.done) break;
      size += read.value.length;
      if (size > maxBytes) {
        await reader?.cancel();
        throw new CliError(`${url}: the answer is larger than ${maxBytes} bytes`, 1);
      }
      chunks.push(read.value);
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw failed(error as Error);
  }
  return {
    status: response.status,
    ok: response.ok,
    text: Buffer.concat(chunks).toString('utf8'),
  };
}

async function fetchJson(
  url: string,
  timeoutMs = DEFAULT_CT_TIMEOUT_MS,
): Promise<{ status: number; body: unknown }> {
  const { status, text } = await fetchText(url, timeoutMs, MAX_CT_BODY_BYTES);
  try {
    return { status, body: JSON.parse(text) as unknown };
  } catch {
    const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    throw new CliError(
      `${url}: HTTP ${status}, the body is not JSON: ${visible(JSON.stringify(shown))}`,
      1,
    );
  }
}

/** A 2xx JSON body parsed with `schema`; the error names the URL and the offending field. */
async function getCtJson<T>(url: string, schema: z.ZodType<T>, timeoutMs?: number): Promise<T> {
  const { status, body } = await fetchJson(url, timeoutMs);
  if (status < 200 || status > 299) {
    throw new CliError(`${url}: HTTP ${status} ${visible(JSON.stringify(body))}`, 1);
  }
  return parseCtBody(url, schema, body);
}

function parseCtBody<T>(url: string, schema: z.ZodType<T>, body: unknown): T {
  try {
    return parseInput(schema, body, 'body');
  } catch (error) {
    if (error instanceof SchemaError) {
      throw new CliError(`${url}: malformed answer: ${visible(error.message)}`, 1);
    }
    throw error;
  }
}

/**
 * A node's RFC 6962 signed tree head (`ct sth --url`), schema-checked. Its
 * `tree_head_signature` is NOT verified: each node signs with its own log key
 * (`<dataDir>/ct-log.key`), which neither the genesis nor the cluster files publish, so there is
 * no key the CLI could trust for it. Nothing here relies on its root.
 */
export async function fetchSignedTreeHead(
  url: string,
  timeoutMs?: number,
): Promise<z.infer<typeof sthSchema>> {
  return getCtJson(`${url.replace(/\/$/, '')}/ct/v1/get-sth`, sthSchema, timeoutMs);
}

/**
 * Checks that `certificate` (an x509 entry with `timestamp`) is in the log at `url`, in the tree
 * `head` — a head the caller trusts, the quorum-verified `ca/tree-head` (`fetchQuorumCheckpoint`),
 * never the log's own `get-sth`: asks `get-proof-by-hash` at `tree_size = head.size` and verifies
 * the audit path against `head.root` (RFC 9162 §2.1.3.2). The log's `get-sth` (unverifiable,
 * see `fetchSignedTreeHead`) is used only to say that a log is behind the head. Throws CliError
 * (exit 1) when the log is behind, has no such entry, answers something malformed, or its proof
 * does not verify — which is what a log serving a made-up tree gets.
 */
export async function checkCtInclusion(
  url: string,
  certificate: Uint8Array,
  timestamp: number,
  head: TrustedTreeHead,
  options: { readonly timeoutMs?: number } = {},
): Promise<CtInclusion> {
  const base = url.replace(/\/$/, '');
  const rootHex = toHex(head.root);
  if (head.size === 0) {
    throw new CliError(
      'the quorum tree head is the empty log (size 0): no certificate is in it',
      1,
    );
  }
  const sth = await fetchSignedTreeHead(base, options.timeoutMs);
  if (sth.tree_size < head.size) {
    throw new CliError(
      `the log at ${base} is behind the quorum tree head (size ${sth.tree_size} < ${head.size}); retry`,
      1,
    );
  }
  const leaf = leafHash(encodeMerkleTreeLeaf({ timestamp, entry: { type: 'x509', certificate } }));
  const proofUrl = `${base}/ct/v1/get-proof-by-hash?hash=${encodeURIComponent(toBase64(leaf))}&tree_size=${head.size}`;
  const { status, body } = await fetchJson(proofUrl, options.timeoutMs);
  if (status === 404) {
    throw new CliError(
      `${base}: the log has no entry for this certificate in its first ${head.size} entries (the quorum tree head's size)`,
      1,
    );
  }
  if (status < 200 || status > 299) {
    throw new CliError(`${proofUrl}: HTTP ${status} ${visible(JSON.stringify(body))}`, 1);
  }
  const proof = parseCtBody(proofUrl, proofSchema, body);
  const path = proof.audit_path.map(fromBase64);
  if (!verifyInclusion(leaf, proof.leaf_index, head.size, path, head.root)) {
    throw new CliError(
      `${base}: the inclusion proof (leaf ${proof.leaf_index}) does not verify against the quorum tree head (size ${head.size}, root ${rootHex}): the log's tree is not the one the validators signed`,
      1,
    );
  }
  return { url: base, treeSize: head.size, leafIndex: proof.leaf_index, rootHash: rootHex };
}

/** What a node's `validate` answer proves once `checkValidateAnswer` accepted it. */
export interface CheckedValidateAnswer {
  /** The committed height the proven answers were read at: the answer holds as of it. */
  readonly height: number;
  /** The height of the block that published the certificate (proven), or null. */
  readonly publishedAt: number | null;
  /** The committed revocation of the certificate at that height, if any. */
  readonly revocation: RevocationRecord | null;
  /** For a `valid` answer, its CT log entry as far as it could be checked; else null. */
  readonly transparency: CheckedTransparency | null;
  /** The committed time (ms) of block `height`, and the wall clock it was checked at. */
  readonly blockTime: number;
  readonly checkedAt: number;
}

/**
 * How old a `validate` answer may be (`checkValidateAnswer`): proofs at height H say nothing of
 * a revocation committed after H, and a node that is behind — or replays an answer from before
 * a revocation — can prove "not revoked" at H as well as an honest one.
 */
export interface ValidateAnswerAge {
  /** The committed header time (ms) of block `height` (`CommittedRoots.blockTime`). */
  readonly blockTime: (height: number) => Promise<number>;
  /** Wall clock (ms). */
  readonly now: number;
  /** The oldest block accepted, in ms (`cert verify --max-block-age`). */
  readonly maxBlockAgeMs: number;
}

/**
 * A `validate` answer's CT log entry: its audit path leads from the certificate's leaf (rebuilt
 * from the certificate and its proven publication time) to the answer's root. `committed`: that
 * root is the consensus tree head's (`ca/ct/head`) proven at the answer's height, so the entry
 * is in the log the validator quorum committed. `claimed`: the root is the node's word — the
 * answer is for a smaller tree than that head's (`reason` says which), a log a moment behind its
 * commits. A larger tree than the head's is refused: an honest node never answers one.
 */
export interface CheckedTransparency {
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly status: 'committed' | 'claimed';
  readonly reason: string | null;
}

/**
 * Checks the `transparency` part of a `valid` answer for `certificate`, published at block
 * `publishedAt`, against the committed state at `height` (the height of the answer's proofs):
 * throws CliError (exit 1) when the audit path does not lead to the stated root, when the tree
 * is larger than the consensus tree head's, or when its root differs from the head's of the
 * same size.
 */
async function checkTransparency(
  log: NonNullable<CaValidateResponse['transparency']>,
  certificate: Uint8Array,
  publishedAt: number,
  height: number,
  query: CaQuery,
  check: CaAnswerCheck,
): Promise<CheckedTransparency> {
  const { leafIndex, treeSize } = log;
  const time = await publicationTime(query, check, publishedAt, height);
  const leaf = leafHash(certificateLogLeaf(certificate, time));
  if (!verifyInclusion(leaf, leafIndex, treeSize, log.auditPath, log.rootHash)) {
    throw new CliError(
      `the node answered valid, but its CT log inclusion proof (leaf ${leafIndex} of ${treeSize}) does not lead from this certificate's entry to its root`,
      1,
    );
  }
  const { value } = await readCaValue(
    query,
    caQuery('treeHead', new Uint8Array(0), height),
    TREE_HEAD_KEY,
    check,
  );
  const head = decodeTreeHead(value);
  const size = head.range.size;
  if (treeSize > size) {
    // The node answers at the consensus head's size once its log holds it (ca-service.ts):
    // a larger tree is one the validators have not committed by this height.
    throw new CliError(
      `the node's CT log answered at tree size ${treeSize}, larger than the consensus tree head's ${size} at height ${height}: an honest node answers at most at the committed size`,
      1,
    );
  }
  if (treeSize < size) {
    return {
      leafIndex,
      treeSize,
      status: 'claimed',
      reason: `its log answered at tree size ${treeSize}, the consensus tree head at height ${height} has size ${size}`,
    };
  }
  if (toHex(treeHeadRoot(head)) !== toHex(log.rootHash)) {
    throw new CliError(
      `the node's CT log root at tree size ${size} is not the consensus tree head's at height ${height}: its log is not the one the validators committed`,
      1,
    );
  }
  return { leafIndex, treeSize, status: 'committed', reason: null };
}

/**
 * Checks the consensus part of a node's `validate` answer for `certificate` (DER) the way the
 * other CA reads of another node are checked (`readCaValue` with `check`, normally
 * `committedCaCheck`): the `certificate` and `revocation` answers must be for the certificate's
 * own serial, at one height, each proof must verify against its state root and that root must
 * be the one the validator quorum committed at that height. The proven values must agree with
 * the node's verdict: a `valid` answer needs the certificate published (same DER) and not
 * revoked; a `revoked` one a proven revocation; a `not_published` one no such certificate. A
 * `valid` answer must also carry its CT log entry (an honest node whose log lacks it answers
 * `not_in_log`), which is checked with `query` — the node's `ca` query, its answers held to
 * committed roots by `check` — at the same height (`checkTransparency`). The block of that
 * height must be at most `age.maxBlockAgeMs` old at `age.now` (its committed time from
 * `age.blockTime`): an answer from before a revocation proves "not revoked" as well as a fresh
 * one. Throws CliError (exit 1) otherwise, or the check's refusal; returns the height and its
 * block time, the proven revocation and the log entry. An answer without a consensus part (the
 * node refused it offline) has nothing to check: null.
 */
export async function checkValidateAnswer(
  answer: CaValidateResponse,
  certificate: Uint8Array,
  check: CaAnswerCheck,
  query: CaQuery,
  age: ValidateAnswerAge,
): Promise<CheckedValidateAnswer | null> {
  const consensus = answer.consensus;
  if (consensus === null) {
    if (answer.valid) throw new CliError('the node answered valid without its proven answers', 1);
    return null;
  }
  const serial = readTbs(splitCertificate(certificate).tbs).serial;
  const replay = async (name: 'certificate' | 'revocation', key: Uint8Array, height?: number) => {
    const found = consensus.answers.find((a) => a.query === name);
    if (found === undefined) throw new CliError(`the node's answer lacks the ${name} query`, 1);
    if (toHex(found.data) !== toHex(serial)) {
      throw new CliError(`the node's ${name} answer is for another serial`, 1);
    }
    const proven = await readCaValue(
      () => ({
        height: found.height,
        value: found.value,
        proof: found.proof,
        stateRoot: found.stateRoot,
      }),
      caQuery(name, serial, height),
      key,
      check,
    );
    if (proven.height === null) throw new CliError(`the node's ${name} answer has no height`, 1);
    return { value: proven.value, height: proven.height };
  };
  const published = await replay('certificate', certificateKey(serial));
  const revoked = await replay('revocation', revocationKey(serial), published.height);
  const blockTime = await age.blockTime(published.height);
  if (age.now - blockTime > age.maxBlockAgeMs) {
    throw new CliError(
      `the node's answer holds as of block ${published.height}, from ${blockTimeAndAge(blockTime, age.now)}, ` +
        `older than ${age.maxBlockAgeMs / 1000} s: it would not show a later revocation ` +
        `(the node may be behind, or answer from an old height); ask another --node, or accept the age with --max-block-age SECONDS`,
      1,
    );
  }
  const record = published.value === null ? null : decodeCertificateRecord(published.value);
  const revocation = revoked.value === null ? null : decodeRevocation(revoked.value);
  const isPublished = record !== null && toHex(record.der) === toHex(certificate);
  if (answer.valid && (!isPublished || revocation !== null)) {
    throw new CliError(
      `the node answered valid, but its proven answers at height ${published.height} show the certificate ${isPublished ? 'revoked' : 'not published'}`,
      1,
    );
  }
  if (answer.reason === 'revoked' && revocation === null) {
    throw new CliError(
      `the node answered revoked, but its proven answers at height ${published.height} show no revocation`,
      1,
    );
  }
  if (answer.reason === 'not_published' && isPublished) {
    throw new CliError(
      `the node answered not published, but its proven answers at height ${published.height} show the certificate`,
      1,
    );
  }
  let transparency: CheckedTransparency | null = null;
  if (answer.valid && isPublished) {
    if (answer.transparency === null) {
      throw new CliError(
        "the node answered valid without the certificate's CT log entry (a node whose log lacks it answers not_in_log)",
        1,
      );
    }
    transparency = await checkTransparency(
      answer.transparency,
      certificate,
      record.publishedAt,
      published.height,
      query,
      check,
    );
  }
  return {
    height: published.height,
    publishedAt: isPublished ? record.publishedAt : null,
    revocation,
    transparency,
    blockTime,
    checkedAt: age.now,
  };
}

/**
 * `cert verify --cluster`: asks node `nodeName` (default the first) of the cluster to `validate`
 * the certificate (hypermesh.trustchain.ca.v1), checks the answer's proofs against the roots the
 * validator quorum committed (`checkValidateAnswer`) and describes it in one line, with the
 * height it holds as of and that block's time and age. A node that is behind refuses
 * (UNAVAILABLE, `stale`); a node whose proofs do not check, or whose answer's block is older
 * than `maxBlockAgeMs`, is refused here (CliError), not believed.
 */
export async function validateOnCluster(
  cluster: string,
  nodeName: string | undefined,
  certificate: Uint8Array,
  purpose: 'serverAuth' | 'clientAuth' | 'any',
  maxBlockAgeMs: number,
): Promise<{ valid: boolean; line: string }> {
  const { caService } = await import('../faces/ca-rpc.js');
  const { createNodeRpcClient } = await import('../consensus/net/index.js');
  const { findNode, loadClusterTarget, openOperatorParts } = await import('./operator.js');
  const { stoqFailure } = await import('./tx-submit.js');
  const { withCommittedRoots } = await import('./verified-root.js');
  const target = await loadClusterTarget(cluster);
  const node =
    nodeName === undefined
      ? (target.nodes[0] as (typeof target.nodes)[number])
      : findNode(target, nodeName);
  const operator = await openOperatorParts(target);
  try {
    const answer = await operator.parts.endpoint
      .client(caService, node.name)
      .call('validate', { certificate, purpose })
      .catch(stoqFailure(node.name));
    const client = withCommittedRoots(
      createNodeRpcClient({ endpoint: operator.parts.endpoint, peer: node.name }),
      operator.genesis,
    );
    const roots = committedRootsOf(client);
    const checked = await checkValidateAnswer(
      answer,
      certificate,
      committedCaCheck(client),
      (request) => client.query(request),
      { blockTime: (height) => roots.blockTime(height), now: Date.now(), maxBlockAgeMs },
    );
    return describeValidateAnswer(node.name, answer, checked);
  } finally {
    await operator.close();
  }
}

/**
 * The line `cert verify --cluster` prints for node `nodeName`'s `validate` answer once
 * `checkValidateAnswer` accepted it (`checked`): the verdict, the publication height, the CT log
 * entry — checked against the consensus tree head, or stated as the node's claim — and the
 * height the answer holds as of, with its block's time and age. The node's own words (message,
 * reason) are escaped.
 */
export function describeValidateAnswer(
  nodeName: string,
  answer: CaValidateResponse,
  checked: CheckedValidateAnswer | null,
): { valid: boolean; line: string } {
  // The proven height the answer holds as of (the node's view then, checked here).
  const asOf =
    checked === null
      ? ''
      : `; as of height ${checked.height} (${blockTimeAndAge(checked.blockTime, checked.checkedAt)})`;
  if (!answer.valid || checked === null) {
    return {
      valid: false,
      line: `${nodeName}: invalid: ${visible(answer.message ?? '')} (${visible(answer.reason ?? 'unknown')})${asOf}`,
    };
  }
  const { publishedAt } = checked;
  // Height 1 publishes only the genesis bootstrap certificates (no block before it issues).
  const genesis =
    publishedAt === GENESIS_CERTIFICATE_HEIGHT ? ' (genesis bootstrap certificate)' : '';
  return {
    valid: true,
    line:
      `${nodeName}: valid: not revoked, published at height ${publishedAt ?? '?'}${genesis}` +
      describeLogEntry(checked.transparency, checked.height) +
      asOf,
  };
}

/** How `cert verify --cluster` states the answer's CT log entry: checked, or the node's claim. */
function describeLogEntry(entry: CheckedTransparency | null, height: number): string {
  if (entry === null) return '';
  const leaf = `leaf ${entry.leafIndex} of ${entry.treeSize}`;
  return entry.status === 'committed'
    ? `, ${leaf} in its CT log (the consensus tree head at height ${height})`
    : `; the node claims ${leaf} in its CT log, not checked against the consensus tree head (${entry.reason ?? ''})`;
}

/**
 * `ct sth --cluster`: the log's consensus tree head at the node's latest committed height —
 * the proven `ca/tree-head` answer, that block's header and commit — verified against the
 * genesis before it is returned (a node that lies is refused here, not later).
 */
export async function fetchQuorumCheckpoint(
  client: NodeRpcClient,
  genesis: GenesisDocument,
  falcon: FalconBackend = defaultFalcon(),
): Promise<{ checkpoint: QuorumCheckpoint; verified: VerifiedQuorumCheckpoint }> {
  const answer = await client.query(caQuery('treeHead', new Uint8Array(0)));
  if (answer.height === null || answer.height < 1 || answer.proof === undefined) {
    throw new CliError('the node has committed no block yet (or sent no state proof)', 1);
  }
  const synced = await client.getBlock(answer.height, { deadlineMs: 15_000 });
  let checkpoint: QuorumCheckpoint;
  try {
    checkpoint = {
      header: decodeBlock(synced.block).header,
      commit: decodeQuorumCertificate(synced.commit),
      value: answer.value,
      proof: answer.proof,
    };
  } catch (error) {
    throw new CliError(
      `the node sent block ${answer.height} in a form that does not decode: ${(error as Error).message}`,
      1,
    );
  }
  try {
    return { checkpoint, verified: verifyQuorumCheckpoint(checkpoint, genesis, falcon) };
  } catch (error) {
    if (error instanceof QuorumCheckpointError) {
      throw new UnverifiedCheckpointError(
        `the node's tree head does not verify: ${error.message} [${error.code}]`,
        error.code,
      );
    }
    throw error;
  }
}

/**
 * `fetchQuorumCheckpoint`'s refusal (exit code 1), with the checkpoint's code: a caller tells
 * `CT_QC_VALIDATOR_SET_CHANGED` (the latest block is decided by a set other than the genesis
 * set, which the offline verifier cannot check) from a node that lies.
 */
export class UnverifiedCheckpointError extends CliError {
  constructor(
    message: string,
    readonly code: QuorumCheckpointErrorCode,
  ) {
    super(message, 1);
    this.name = 'UnverifiedCheckpointError';
  }
}

/** The lines `ct sth` / `ct verify` print for a verified quorum checkpoint. */
export function describeQuorumCheckpoint(verified: VerifiedQuorumCheckpoint): string[] {
  return [
    `quorum-signed tree head of ${verified.origin}`,
    `  tree size   ${verified.size}`,
    `  root        ${Buffer.from(verified.root).toString('base64')} (hex ${toHex(verified.root)})`,
    `  timestamp   ${verified.timestamp} (block ${verified.appendedAt}, the last that appended)`,
    `  signed by   block ${verified.height} (${toHex(verified.blockHash)}), commit of ` +
      `${verified.signers.join(', ')}; ${verified.falconSignatures} FALCON-1024 signatures`,
  ];
}

export interface ServedLogCheck {
  /** `same`/`consistent`: the node agrees; the others make `ct verify` exit 1. */
  readonly outcome: 'same' | 'consistent' | 'split-view' | 'inconsistent' | 'behind';
  readonly lines: readonly string[];
}

/** A served signed note or tree head: at most a note's size (`MAX_NOTE_BYTES`) and 30 s. */
async function getText(url: string): Promise<string> {
  const { status, ok, text } = await fetchText(url, DEFAULT_CT_TIMEOUT_MS, MAX_NOTE_BYTES);
  if (!ok) {
    throw new CliError(`${url}: HTTP ${status} ${visible(JSON.stringify(text.slice(0, 200)))}`, 1);
  }
  return text;
}

/**
 * A served note's lines as `ct verify` prints them, indented, each escaped (`visible`): the note
 * is the node's word, and a terminal must not take it for control sequences.
 */
function servedLines(note: string): string[] {
  return note
    .trimEnd()
    .split('\n')
    .map((line) => `    ${visible(line)}`);
}

/**
 * Compares the node's signed checkpoint at `url` (its `/checkpoint`, which the node signs with
 * its validator identity key) with a verified quorum checkpoint. Same size and another root is
 * split-view evidence: both signed heads are printed. A larger served log must be consistent
 * with the quorum's head (RFC 9162 §2.1.4.2, the node's own `get-sth-consistency` proof).
 */
export async function checkServedLog(
  url: string,
  verified: VerifiedQuorumCheckpoint,
  genesis: GenesisDocument,
): Promise<ServedLogCheck> {
  const base = url.replace(/\/$/, '');
  const note = await getText(`${base}/checkpoint`);
  let comparison;
  try {
    comparison = compareServedCheckpoint(verified, note, genesis);
  } catch (error) {
    if (error instanceof QuorumCheckpointError) {
      throw new CliError(`${base}/checkpoint: ${error.message} [${error.code}]`, 1);
    }
    throw error;
  }
  const by = comparison.signers.join(', ');
  if (comparison.kind === 'same') {
    return {
      outcome: 'same',
      lines: [`${base}: same root at tree size ${comparison.size} (checkpoint signed by ${by})`],
    };
  }
  if (comparison.kind === 'split-view') {
    const sth = await getText(`${base}/ct/v1/get-sth`).catch((error: Error) => error.message);
    return {
      outcome: 'split-view',
      lines: [
        `split view: two different signed tree heads for tree size ${comparison.size} of ${verified.origin}`,
        `  quorum (commit of block ${verified.height}): root ${comparison.quorumRoot}`,
        `  ${base} (signed by ${by}): root ${comparison.servedRoot}`,
        ...describeQuorumCheckpoint(verified).map((line) => `  ${line}`),
        `  served checkpoint (${base}/checkpoint):`,
        ...servedLines(note),
        `  served get-sth: ${visible(JSON.stringify(sth.trim()))}`,
      ],
    };
  }
  const { servedSize, servedRoot } = comparison;
  if (servedSize < comparison.size) {
    return {
      outcome: 'behind',
      lines: [
        `not compared: ${base}'s latest signed tree head has size ${servedSize}, below the checkpoint's ${comparison.size}`,
      ],
    };
  }
  // From the empty tree there is nothing to prove (RFC 9162 §2.1.4: first > 0).
  const answer =
    comparison.size === 0
      ? { consistency: [] }
      : await getCtJson(
          `${base}/ct/v1/get-sth-consistency?first=${comparison.size}&second=${servedSize}`,
          consistencySchema,
        );
  const proof = answer.consistency.map(fromBase64);
  if (verifyConsistency(comparison.size, servedSize, verified.root, servedRoot, proof)) {
    return {
      outcome: 'consistent',
      lines: [
        `${base}: tree size ${servedSize} (signed by ${by}) is consistent with the checkpoint's ${comparison.size}`,
      ],
    };
  }
  return {
    outcome: 'inconsistent',
    lines: [
      `inconsistent: ${base}'s signed tree head (size ${servedSize}, root ${Buffer.from(servedRoot).toString('base64')}, signed by ${by}) does not extend the quorum's tree head of size ${comparison.size}`,
      ...describeQuorumCheckpoint(verified).map((line) => `  ${line}`),
      `  served checkpoint (${base}/checkpoint):`,
      ...servedLines(note),
    ],
  };
}
