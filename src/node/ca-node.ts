import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Database } from 'better-sqlite3';
import { toHex } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import { defaultFalcon, type FalconBackend } from '../crypto/falcon.js';
import { readKeyFile, writeKeyFile } from '../crypto/keyfile.js';
import { generateP256KeyPair } from '../crypto/p256.js';
import {
  SEQUENCE_QUERY,
  buildTransaction,
  decodeSequence,
} from '../consensus/application/index.js';
import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import { openDatabase } from '../storage/database.js';
import { parseTrustBundle } from '../trustchain/ca/bundle.js';
import { createDeterministicSigner } from '../trustchain/ca/certificate.js';
import { buildCrl } from '../trustchain/ca/crl.js';
import {
  CA_MODULE_NAME,
  CaStateReader,
  buildPublication,
  caStateKey,
  createIssuerView,
  ctLogOrigin,
  eligibleIssuers,
  encodeCaBody,
  treeHeadRoot,
  type ConsensusTreeHead,
  type CaIssuer,
  type CaModuleConfig,
} from '../trustchain/ca-module/index.js';
import {
  addCosignatures,
  ed25519KeyId,
  encodeCertificateChain,
  encodeMerkleTreeLeaf,
  openCtLog,
  parseSignedNote,
  rfc6962KeyId,
  signCheckpointEd25519,
  signTreeHeadRfc6962,
  type CheckpointVerifierSet,
  type CtLog,
} from '../trustchain/ct/index.js';
import { startCtHttpServer, type CtHttpServer } from '../faces/ct-http.js';
import {
  OCSP_MAX_BLOCK_AGE_MS,
  createOcspResponder,
  type OcspResponder,
} from '../faces/ocsp-http.js';
import {
  OcspResponseStatus,
  ocspErrorResponse,
  type OcspCertStatus,
} from '../trustchain/ca/index.js';
import { createCtSplitViewCounter } from './ca-metrics.js';
import { CliError } from './cli-error.js';
import type { Logger } from './log.js';
import type { ValidatorNodeConfig } from './node-config.js';

/**
 * The TrustChain CA in a running node (docs/ca.md, "In the node"; docs/ct.md, "In the node"):
 *
 * - **Publication.** After each commit the node looks at the pending batches; for every batch
 *   whose rotation has reached this validator (`eligibleIssuers`), it signs the certificates
 *   with its intermediate key and FALCON key and submits a `ca/publish` transaction from its
 *   node key to its own mempool (gossiped like any transaction).
 * - **Transparency log.** Every certificate a committed block publishes is appended to the
 *   node's RFC 6962 log (`<dataDir>/ct.sqlite`), one batch per block with the block time; each
 *   new tree head is signed by the node (an Ed25519 cosignature line and an RFC 6962 tree-head
 *   signature with the node's log key `<dataDir>/ct-log.key`, created on first start). After
 *   appending, the log must equal the consensus tree head `ca/ct/head` (docs/ct.md,
 *   "Quorum-signed tree head"); a difference is logged and counted, never fatal.
 * - **HTTP.** With `ct.http` configured, the log's read API (src/faces/ct-http.ts).
 */
export interface CaNode {
  /** Called after each commit (and once at start): publishes what is due, extends the log. */
  committed(height: number): void;
  /** The CT HTTP base URL, or null when not served. */
  readonly ctUrl: string | null;
  readonly log: CtLog;
  /**
   * This validator's intermediate's current CRL (DER), or null when it has no intermediate or
   * the last committed block is older than `ca.maxBlockAgeSeconds` (served as 503).
   */
  crl(): Uint8Array | null;
  /** Answers one DER OCSP request for this validator's intermediate (null without one). */
  readonly ocsp: OcspResponder | null;
  /** Resolves when the publications started so far have been submitted (for tests). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface CaNodeOptions {
  readonly config: ValidatorNodeConfig;
  readonly genesis: GenesisDocument;
  readonly ca: CaModuleConfig;
  /** Full-key reads of the latest committed state. */
  readonly state: { get(key: Uint8Array): Uint8Array | null };
  /**
   * The committed blocks `state` is the state after (the node's `store.blocks`): the last one's
   * time is the thisUpdate of OCSP answers and the CRL. Absent: no block time is known, so OCSP
   * answers `tryLater` and no CRL is served.
   */
  readonly blocks?: CommittedBlocks;
  /** Clock (ms) the last committed block's age is measured with; default Date.now. */
  readonly now?: () => number;
  readonly query: (request: QueryRequest) => QueryResponse;
  readonly identity: {
    readonly ed25519: KeyObject;
    readonly falconPublicKey: Uint8Array;
    readonly falconSecretKey: Uint8Array;
  };
  /** Admits a transaction from this node (mempool + gossip). */
  readonly submit: (tx: Uint8Array) => Promise<{ ok: boolean; code?: string; message?: string }>;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly falcon?: FalconBackend;
}

/** What the CA reads of the block store (satisfied by storage's `BlockReader`). */
export interface CommittedBlocks {
  latestHeight(): number | null;
  byHeight(height: number): { readonly timeMs: number } | null;
}

/** How recent the node's last committed block is, by the clock `now` (ms). */
export interface CommittedBlockFreshness {
  /** The last committed block's time (ms), or null when no block is known. */
  committedTime(): number | null;
  /**
   * The last committed block's time while it is at most `maxBlockAgeMs` old, else null: the
   * node is behind (partitioned or stalled) and does not vouch for the present.
   */
  freshBlockTime(): number | null;
}

/**
 * The one freshness notion of the node's revocation answers (docs/ca.md, "OCSP"): OCSP, the CRL
 * and the RPC's `validate` answer only while the last committed block is at most
 * `maxBlockAgeMs` (`ca.maxBlockAgeSeconds`) old. Absent `blocks`: never fresh.
 */
export function committedBlockFreshness(
  blocks: CommittedBlocks | undefined,
  now: () => number,
  maxBlockAgeMs: number,
): CommittedBlockFreshness {
  let lastBlock: { height: number; timeMs: number } | null = null;
  const committedTime = (): number | null => {
    const height = blocks?.latestHeight() ?? null;
    if (height === null) return null;
    if (lastBlock?.height !== height) {
      const block = blocks?.byHeight(height) ?? null;
      if (block === null) return null;
      lastBlock = { height, timeMs: block.timeMs };
    }
    return lastBlock.timeMs;
  };
  const freshBlockTime = (): number | null => {
    const time = committedTime();
    return time === null || now() - time > maxBlockAgeMs ? null : time;
  };
  return { committedTime, freshBlockTime };
}

export const CT_LOG_FILE = 'ct.sqlite';
export const CT_LOG_KEY_FILE = 'ct-log.key';
/** A CRL is re-signed when a revocation arrives, or once it is this old. */
export const CRL_REFRESH_MS = 3_600_000;
/** nextUpdate = thisUpdate + this. */
export const CRL_VALIDITY_MS = 86_400_000;

/** The log's identity: one origin per chain, the same on every node. */
export function ctOrigin(chainId: string): string {
  return ctLogOrigin(chainId);
}

/** The node's RFC 6962 log key; `created` when the file was missing and a new key was written. */
async function loadOrCreateLogKey(file: string): Promise<{ key: KeyObject; created: boolean }> {
  const exists = await stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
  if (exists) {
    try {
      return { key: (await readKeyFile(file, { kind: 'p256' })).keys.privateKey, created: false };
    } catch (error) {
      throw new CliError(`cannot read the CT log key ${file}: ${(error as Error).message}`, 2);
    }
  }
  const keys = generateP256KeyPair();
  await writeKeyFile(file, { kind: 'p256', keys });
  return { key: keys.privateKey, created: true };
}

/** The configured trust bundle file must be the genesis bundle (exit 2 otherwise). */
async function checkTrustBundleFile(
  file: string,
  ca: CaModuleConfig,
  falcon: FalconBackend,
): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(
      `cannot read the trust bundle ${file} (ca.trustBundleFile): ${(error as Error).message}`,
      2,
    );
  }
  let same = false;
  try {
    const bundle = parseTrustBundle(text, falcon);
    same =
      toHex(bundle.root.certificate) === toHex(ca.bundle.root.certificate) &&
      bundle.validators.length === ca.bundle.validators.length &&
      bundle.validators.every(
        (v, i) =>
          toHex(v.certificate) === toHex(ca.bundle.validators[i]?.certificate ?? new Uint8Array()),
      );
  } catch (error) {
    throw new CliError(`the trust bundle ${file} does not parse: ${(error as Error).message}`, 2);
  }
  if (!same)
    throw new CliError(`the trust bundle ${file} is not the genesis app.ca trust bundle`, 2);
}

type IssuerSigner = ReturnType<typeof createDeterministicSigner>;

/** This node's intermediate and its signing key. */
interface Publisher {
  readonly issuer: CaIssuer;
  readonly signer: IssuerSigner;
}

/** The configured intermediate key (`ca.intermediateKeyFile`), or null without a `ca` section. */
async function loadIntermediateSigner(config: ValidatorNodeConfig): Promise<IssuerSigner | null> {
  if (config.ca === null) return null;
  try {
    const { keys } = await readKeyFile(config.ca.intermediateKeyFile, { kind: 'p256' });
    return createDeterministicSigner(keys.privateKey);
  } catch (error) {
    throw new CliError(
      `cannot read the CA intermediate key ${config.ca.intermediateKeyFile}: ${(error as Error).message}`,
      2,
    );
  }
}

/** Why `signer` and the node's FALCON key cannot sign for `issuer`, or null when they can. */
function issuerMismatch(
  options: CaNodeOptions,
  issuer: CaIssuer,
  signer: IssuerSigner,
): string | null {
  const { config, identity } = options;
  if (!signer.publicKey.equals(issuer.issuer.publicKey)) {
    return `${config.ca?.intermediateKeyFile ?? 'the intermediate key'} is not the key of ${config.name}'s intermediate`;
  }
  if (toHex(identity.falconPublicKey) !== toHex(issuer.issuer.falconPublicKey)) {
    return `${config.name}'s intermediate carries another FALCON key than the node identity's`;
  }
  return null;
}

export async function startCaNode(options: CaNodeOptions): Promise<CaNode> {
  const { config, genesis, ca, logger } = options;
  const falcon = options.falcon ?? defaultFalcon();
  if (config.ca !== null) await checkTrustBundleFile(config.ca.trustBundleFile, ca, falcon);
  const signer = await loadIntermediateSigner(config);
  const moduleState = { get: (key: Uint8Array) => options.state.get(caStateKey(key)) };
  const reader = new CaStateReader(moduleState);
  // Genesis intermediates and those added through consensus (docs/ca.md, "Adding a validator's
  // intermediate"): the node publishes once its own is among them.
  const view = createIssuerView(ca, falcon);
  let self: Publisher | null = null;
  /** Takes up this node's intermediate once it is in effect; null while it does not publish. */
  const adoptIssuer = (atStart: boolean): Publisher | null => {
    if (self !== null) return self;
    if (signer === null) return null;
    const issuer = view.issuers(moduleState).find((candidate) => candidate.name === config.name);
    if (issuer === undefined) return null;
    const mismatch = issuerMismatch(options, issuer, signer);
    if (mismatch !== null) {
      // A genesis misconfiguration stops the node; a later addition cannot stop a running one.
      if (atStart && ca.issuers.includes(issuer)) throw new CliError(mismatch, 2);
      logger.error('ca intermediate in effect but unusable', { component: 'ca', error: mismatch });
      return null;
    }
    self = { issuer, signer };
    if (!ca.issuers.includes(issuer)) {
      logger.info('ca intermediate in effect: publishing', {
        component: 'ca',
        issuer: issuer.name,
      });
    }
    return self;
  };
  adoptIssuer(true);
  let unusable = false;

  const origin = ctOrigin(genesis.chainId);
  const logKeyFile = path.join(config.dataDir, CT_LOG_KEY_FILE);
  const { key: logKey, created: logKeyCreated } = await loadOrCreateLogKey(logKeyFile);
  const db: Database = openDatabase(path.join(config.dataDir, CT_LOG_FILE));
  const log = openCtLog(db, { origin });
  if (logKeyCreated && log.latestTreeHead() !== undefined) {
    // A log that has heads had a key: this one replaces it. Clients that know the old LogID
    // see another; the latest head is re-signed with the new key below (signLatest).
    logger.warn('ct log key was missing: generated a new one for an existing log', {
      component: 'ct',
      file: logKeyFile,
      treeSize: log.size,
    });
  }
  db.exec(
    'CREATE TABLE IF NOT EXISTS node_ct_progress (id INTEGER PRIMARY KEY CHECK (id = 1), height INTEGER NOT NULL)',
  );
  const readProgress = db.prepare('SELECT height FROM node_ct_progress WHERE id = 1').pluck();
  const writeProgress = db.prepare(
    'INSERT INTO node_ct_progress (id, height) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET height = excluded.height',
  );
  const cosignerName = `${origin}/${config.name}`;
  const verifierSet: CheckpointVerifierSet = {
    origin,
    cosigners: [
      { name: cosignerName, publicKey: ed25519RawPublicKey(options.identity.ed25519), weight: 1 },
    ],
    rfc6962Keys: [{ name: origin, publicKey: logKeyPublic(logKey) }],
  };
  const chainOf = (issuer: string): Uint8Array[] => {
    const found = view.issuers(moduleState).find((candidate) => candidate.name === issuer);
    return found === undefined ? [] : [found.issuer.certificate, ca.bundle.root.certificate];
  };

  // The lines this node's current keys sign a head with (signed-note key IDs).
  const ownLines = [
    { name: origin, keyId: rfc6962KeyId(origin, logKeyPublic(logKey)) },
    {
      name: cosignerName,
      keyId: ed25519KeyId(cosignerName, ed25519RawPublicKey(options.identity.ed25519)),
    },
  ];
  const signedWithCurrentKeys = (size: number): boolean => {
    const note = log.signedCheckpoint(size);
    if (note === undefined) return false;
    const lines = parseSignedNote(note).signatures;
    return ownLines.every((own) =>
      lines.some((line) => line.name === own.name && line.keyId === own.keyId),
    );
  };

  /**
   * Signs the latest head unless it carries a line of each current key: a head signed only
   * with a replaced `ct-log.key` would leave `get-sth` without an RFC 6962 signature (503) until
   * a block publishes a certificate. Lines already stored (the old key's) are kept.
   */
  const signLatest = (): void => {
    const head = log.latestTreeHead();
    if (head === undefined || signedWithCurrentKeys(head.treeSize)) return;
    const body = log.checkpointBody(head.treeSize);
    const note = addCosignatures(body, [
      signCheckpointEd25519(body, cosignerName, options.identity.ed25519),
      signTreeHeadRfc6962(head, origin, logKey),
    ]);
    log.addCheckpointSignatures(head.treeSize, note, verifierSet);
  };

  const appendUpTo = (height: number): void => {
    let last = (readProgress.get() as number | undefined) ?? 0;
    while (last < height) {
      const next = last + 1;
      const published = reader.published(next);
      db.transaction(() => {
        if (published !== null && published.serials.length > 0) {
          const entries = published.serials.map((serial) => {
            const record = reader.certificate(serial);
            if (record === null)
              throw new RangeError(`block ${next} publishes a missing certificate`);
            return {
              leaf: encodeMerkleTreeLeaf({
                timestamp: published.time,
                entry: { type: 'x509', certificate: record.der },
              }),
              extraData: encodeCertificateChain(chainOf(record.issuer)),
            };
          });
          log.appendBatch(entries, published.time);
        }
        writeProgress.run(next);
      })();
      if (published !== null) signLatest();
      last = next;
    }
  };

  // The consensus tree head signs what every honest node's log holds; a difference is a bug
  // or a damaged file here, or a faulty quorum: reported, never fatal.
  const splitView = createCtSplitViewCounter(options.registry);
  let reported: string | null = null;
  const checkAgainstConsensus = (height: number): void => {
    const head = reader.treeHead();
    // A head appended after `height` is compared once the log has caught up with it.
    if (head.height > height) return;
    const mismatch = localLogMismatch(log, head);
    if (mismatch === null) {
      reported = null;
      return;
    }
    const key = JSON.stringify(mismatch);
    if (key === reported) return;
    reported = key;
    splitView.inc();
    logger.error('ct log differs from the quorum-signed consensus tree head', {
      component: 'ct',
      height,
      ...mismatch,
    });
  };

  // Publication: one chain of work, so two commits never sign the same batch twice at once.
  let work: Promise<void> = Promise.resolve();
  const submitted = new Map<number, { atHeight: number; tx: Uint8Array }>();
  let localNext = 0;
  const sender = ed25519RawPublicKey(options.identity.ed25519);

  const nextSequence = (): number => {
    const committed = decodeSequence(options.query({ path: SEQUENCE_QUERY, data: sender }).value);
    localNext = Math.max(localNext, committed);
    return localNext;
  };

  const publishDue = async (
    height: number,
    issuer: CaIssuer,
    signer: ReturnType<typeof createDeterministicSigner>,
  ): Promise<void> => {
    const pending = reader.pending();
    for (const key of [...submitted.keys()]) if (!pending.includes(key)) submitted.delete(key);
    for (const batchHeight of pending) {
      const batch = reader.batch(batchHeight);
      if (batch === null || batch.first === null) continue;
      const issuers = view.issuers(moduleState);
      if (!eligibleIssuers(ca, batchHeight, batch.first, height + 1, issuers).includes(issuer)) {
        continue;
      }
      const earlier = submitted.get(batchHeight);
      if (earlier !== undefined) {
        if (height < earlier.atHeight + 2 * ca.publishWindowBlocks) {
          continue;
        }
        // Not committed in two windows: the transaction was lost or stuck behind a gap.
        localNext = 0;
      }
      const { tx } = await buildPublication(ca, reader, batchHeight, issuer, {
        signer,
        falconSecretKey: options.identity.falconSecretKey,
        falcon,
      });
      const built = buildTransaction({
        chainId: genesis.chainId,
        privateKey: options.identity.ed25519,
        sequence: nextSequence(),
        module: CA_MODULE_NAME,
        body: encodeCaBody(tx),
        stampDifficulty: genesis.proof.work.stampDifficulty,
      });
      const result = await options.submit(built.bytes);
      if (result.ok) {
        localNext += 1;
        submitted.set(batchHeight, { atHeight: height, tx: built.bytes });
        logger.info('ca publication submitted', {
          component: 'ca',
          batchHeight,
          certificates: tx.signatures.length,
          txHash: toHex(built.txHash),
        });
      } else {
        localNext = 0;
        logger.warn('ca publication refused by the mempool', {
          component: 'ca',
          batchHeight,
          code: result.code,
          error: result.message,
        });
      }
    }
  };

  let closed = false;
  const committed = (height: number): void => {
    if (closed) return;
    try {
      appendUpTo(height);
    } catch (error) {
      logger.error('ct log append failed', {
        component: 'ct',
        height,
        error: (error as Error).message,
      });
    }
    try {
      checkAgainstConsensus(height);
    } catch (error) {
      logger.error('ct consensus tree head check failed', {
        component: 'ct',
        height,
        error: (error as Error).message,
      });
    }
    if (unusable) return;
    let publisher: Publisher | null;
    try {
      publisher = adoptIssuer(false);
    } catch (error) {
      unusable = true;
      logger.error('ca intermediate check failed', {
        component: 'ca',
        error: (error as Error).message,
      });
      return;
    }
    if (publisher === null) return;
    const { issuer, signer: own } = publisher;
    work = work
      .then(() => publishDue(height, issuer, own))
      .catch((error: unknown) => {
        logger.error('ca publication failed', {
          component: 'ca',
          height,
          error: (error as Error).message,
        });
      });
  };

  // Revocation answers carry the time of the block they were read from (BFT time), and none is
  // given once that block is older than `maxBlockAge` (docs/ca.md, "OCSP").
  const wallClock = options.now ?? Date.now;
  const maxBlockAge = (config.ca?.maxBlockAgeSeconds ?? OCSP_MAX_BLOCK_AGE_MS / 1000) * 1000;
  const { committedTime, freshBlockTime } = committedBlockFreshness(
    options.blocks,
    wallClock,
    maxBlockAge,
  );

  let crlCache: { count: number; built: number; number: number; der: Uint8Array } | null = null;
  const crl = (): Uint8Array | null => {
    if (self === null) return null;
    const blockTime = freshBlockTime();
    if (blockTime === null) return null;
    // Revocations only ever add to the list, so its count tells whether the cached CRL is
    // current: one state read, not the list's pages, per request.
    const count = reader.revokedCount(self.issuer.name);
    if (
      crlCache !== null &&
      crlCache.count === count &&
      blockTime - crlCache.built < CRL_REFRESH_MS
    ) {
      return crlCache.der;
    }
    const serials = reader.revokedBy(self.issuer.name);
    const seconds = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);
    const thisUpdate = seconds(blockTime);
    const number = Math.max(blockTime, (crlCache?.number ?? -1) + 1);
    const der = buildCrl({
      issuer: self.issuer.issuer,
      signer: self.signer,
      thisUpdate,
      nextUpdate: new Date(thisUpdate.getTime() + CRL_VALIDITY_MS),
      // RFC 5280 §5.2.3: the number grows with every new CRL. The block time in milliseconds
      // does: BFT time is at least the parent's + 1 ms (src/consensus/commit.ts), and a CRL is
      // only rebuilt at a later block — so two blocks in one second, each with a revocation,
      // give two numbers. It is the same on every node for the same block, survives restarts,
      // and exceeds every number of the earlier scheme (thisUpdate in seconds). The previous
      // number + 1 only matters should the state ever move without a new block.
      crlNumber: number,
      revoked: serials.map((serial) => {
        const revocation = reader.revocation(serial);
        if (revocation === null) throw new RangeError('a listed revocation is missing');
        return { serial, revocationDate: seconds(revocation.time), reason: revocation.reason };
      }),
    });
    crlCache = { count: serials.length, built: blockTime, number, der };
    return der;
  };

  // OCSP: this node answers for its own intermediate's certificates, from committed state.
  const ocspStatus = (serial: Uint8Array): OcspCertStatus => {
    if (self === null || serial.length !== 16) return { status: 'unknown' };
    const record = reader.certificate(serial);
    if (record === null || record.issuer !== self.issuer.name) return { status: 'unknown' };
    const revocation = reader.revocation(serial);
    if (revocation === null) return { status: 'good' };
    return {
      status: 'revoked',
      time: new Date(Math.floor(revocation.time / 1000) * 1000),
      reason: revocation.reason,
    };
  };
  let ownResponder: OcspResponder | null = null;
  const ownOcsp = (): OcspResponder | null => {
    if (self === null) return null;
    ownResponder ??= createOcspResponder({
      issuer: self.issuer.issuer,
      signer: self.signer,
      status: ocspStatus,
      committedTime,
      now: wallClock,
      maxBlockAgeMs: maxBlockAge,
    });
    return ownResponder;
  };
  // A node with a `ca` section answers as soon as its intermediate is in effect; until then, and
  // on a node without one, every request is `unauthorized`.
  const ocsp: OcspResponder | null =
    signer === null
      ? null
      : (der, client) =>
          ownOcsp()?.(der, client) ?? {
            response: ocspErrorResponse(OcspResponseStatus.unauthorized),
            outcome: 'unauthorized',
          };

  let server: CtHttpServer | null = null;
  if (config.ct !== null) {
    const where = config.ct.http;
    try {
      server = await startCtHttpServer({
        log,
        host: where.host,
        port: where.port,
        roots: () => [ca.bundle.root.certificate],
        rfc6962Key: { name: origin, publicKey: logKeyPublic(logKey) },
        registry: options.registry,
        crl,
        ocsp,
      });
    } catch (error) {
      db.close();
      throw new CliError(
        `cannot serve the CT log on ${where.host}:${where.port}: ${(error as Error).message}`,
        1,
      );
    }
  }
  signLatest();
  return {
    committed,
    ctUrl: server?.url ?? null,
    log,
    crl,
    ocsp,
    idle: () => work,
    close: async () => {
      closed = true;
      await work;
      await server?.close();
      db.close();
    },
  };
}

/**
 * How the local log differs from the consensus tree head, or null when its root at the head's
 * size is the head's root and it holds nothing more (every block up to the head was appended).
 */
export function localLogMismatch(
  log: Pick<CtLog, 'size' | 'rootAt'>,
  head: ConsensusTreeHead,
): { localSize: number; consensusSize: number; localRoot: string; consensusRoot: string } | null {
  const consensusRoot = treeHeadRoot(head);
  const size = head.range.size;
  const localRoot = log.size >= size ? log.rootAt(size) : null;
  if (log.size === size && localRoot !== null && toHex(localRoot) === toHex(consensusRoot)) {
    return null;
  }
  return {
    localSize: log.size,
    consensusSize: size,
    localRoot: localRoot === null ? '' : toHex(localRoot),
    consensusRoot: toHex(consensusRoot),
  };
}

function logKeyPublic(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}
