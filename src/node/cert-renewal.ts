import { X509Certificate, type KeyObject } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { defaultFalcon, type FalconBackend } from '../crypto/falcon.js';
import { derToPem, parseCertificate, pemToDerList } from '../crypto/x509.js';
import type { ParsedCertificate } from '../crypto/x509.js';
import { HyperMeshError } from '../codec/error.js';
import { TX_RESULT_QUERY, decodeRecordedTxResult } from '../consensus/application/index.js';
import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import type { MempoolAddResult } from '../consensus/mempool.js';
import {
  CA_MODULE_NAME,
  CaStateReader,
  caRenewBody,
  caStateKey,
  createIssuerView,
  genesisRenewalRequest,
  lacksIssuanceExtensions,
  type CaModuleConfig,
} from '../trustchain/ca-module/index.js';
import { PROFILES, type ProfileName } from '../trustchain/ca/profiles.js';
import type { IssuancePolicy } from '../trustchain/ca/request.js';
import { genesisCertificateProfile } from '../trustchain/ca-module/genesis-renewal.js';
import { NodeTxSender } from './discovery-submit.js';
import { writeFileAtomically } from './io.js';
import type { Logger } from './log.js';

/**
 * The node renews its own identity certificate (docs/node.md, "Certificate renewal"): one the
 * cluster issued through consensus (`cluster add-node`'s, or an earlier renewal: it carries a
 * TrustChain issuance reference) or a genesis bootstrap certificate (`cluster init`'s, listed in
 * the genesis). Once `renewAt` of its validity has passed, a `ca` `renew` for its serial, signed
 * with the node's identity key — the key the certificate certifies, which the `ca` module
 * accepts in place of the requesting account (docs/ca.md, "Transactions") — goes into the
 * node's own mempool. A genesis certificate has no committed request to re-issue, so its renew
 * carries one built from the certificate: a CSR signed by the identity key and the FALCON key
 * with a proof of possession (genesis-renewal.ts); the renewed certificate is an ordinary
 * issued one. Once the renewal is committed and published, the new chain (leaf and
 * its intermediate) replaces `identity.certificateFile` atomically and the STOQ endpoint presents
 * it on new handshakes. Failures are logged, counted and retried after a backoff in blocks; they
 * never stop the node. A renewal once issued is kept: when its file cannot be written or its
 * server refuses it, only that write or hand-over is retried (the chain is presented from memory
 * meanwhile), never a second `renew` of the same serial — each would spend the operator's rate
 * window and add a certificate to the CT log that is never used. Once less than
 * `EXPIRY_ERROR_SHARE` of the presented certificate's validity is left, an error is logged.
 *
 * A second instance (`certificate: 'acme-https'`) renews the ACME HTTPS face's own certificate
 * file when it certifies the identity key (`cluster init`'s `acme-https.pem`) and hands the new
 * chain to that face only. The instances share one `RenewalSender`, so two renewals due at the
 * same block are submitted one after the other.
 *
 * All work happens on commits (`committed`): while nothing is due it is a clock comparison, with
 * no state read.
 */

/** Default `identity.renewAt`: renew once two thirds of the validity have passed. */
export const DEFAULT_RENEW_AT = 2 / 3;

/**
 * A certificate this node renewed is renewed again no sooner than this (ms) after its
 * notBefore, whatever `renewAt` says: `renewAt: 0` renews once, not on every block.
 */
export const MIN_RENEWED_AGE_MS = 10 * 60_000;

/** Blocks to wait, after the node's state first lacks the certificate, before looking again. */
const NOT_KNOWN_RECHECK_BLOCKS = 10;
/** How much later than the node's clock the renewal's block time may be (its lifetime clamp). */
export const RENEWAL_WINDOW_SLACK_MS = 60 * 60_000;

/** What the module gives a request without a lifetime (request.ts `checkPolicy`). */
function defaultLifetimeSeconds(policy: IssuancePolicy, profile: ProfileName): number {
  return policy.maxLifetimeSeconds?.[profile] ?? PROFILES[profile].maxLifetimeSeconds;
}

/**
 * The lifetime a renewal asks for: `committed` (null: none, so the policy's `policyDefault`),
 * cut so that the certificate ends `RENEWAL_WINDOW_SLACK_MS`
 * before `issuableUntil` (the earliest intermediate's end). A cluster near an intermediate's end
 * thus gets shorter certificates instead of CA_OUTSIDE_ISSUER_VALIDITY and expiry. Never below
 * one second; the module refuses what the profile's minimum forbids.
 */
export function renewalLifetimeSeconds(
  committed: number | null,
  policyDefault: number,
  issuableUntil: number,
  now: number,
): number | undefined {
  const room = Math.floor((issuableUntil - now - RENEWAL_WINDOW_SLACK_MS) / 1000);
  const wanted = committed ?? policyDefault;
  if (room >= wanted) return committed ?? undefined;
  return Math.max(1, room);
}

/** The same for a genesis certificate: the state holds it once height 1 is committed. */
const GENESIS_RECHECK_BLOCKS = 1;

/** A committed renewal not published within this many blocks counts as failed. */
export const PUBLISH_WAIT_BLOCKS = 200;

/** Backoff after a failed attempt: `BASE × 2^(failures − 1)` blocks, at most `MAX`. */
const BACKOFF_BASE_BLOCKS = 8;
const BACKOFF_MAX_BLOCKS = 1024;

function backoffBlocks(failures: number): number {
  return Math.min(BACKOFF_MAX_BLOCKS, BACKOFF_BASE_BLOCKS * 2 ** (failures - 1));
}

/**
 * Once less than this share of the presented certificate's validity is left (3 days of 30), the
 * node logs an error: renewal has not worked, and the identity is about to expire.
 */
export const EXPIRY_ERROR_SHARE = 0.1;
/** That error is repeated at most this often (ms of the node's clock). */
export const EXPIRY_ERROR_INTERVAL_MS = 60 * 60_000;

/**
 * Which certificate an instance renews: the identity certificate (`identity.certificateFile`,
 * presented by STOQ) or the ACME HTTPS face's own (`acme.certificateFile`, acme-node.ts). The
 * `certificate` label of the renewal metrics, the start of the log messages, and the sender
 * queue key of the renewal body.
 */
export type RenewedCertificate = 'identity' | 'acme-https';

/** `<certificate> certificate renewed`: logged once the new chain is installed. */
export function renewedLogMessage(certificate: RenewedCertificate): string {
  return `${certificate} certificate renewed`;
}

export const RENEWED_LOG_MESSAGE = renewedLogMessage('identity');

export type RenewalResult = 'renewed' | 'refused' | 'failed';

const EXPIRY_METRIC = 'hypermesh_identity_certificate_expiry_timestamp_seconds';
const RENEWALS_METRIC = 'hypermesh_identity_certificate_renewals_total';

/**
 * The renewal metrics of `registry`, registered by the first instance and shared by the others
 * (each writes its own `certificate` label).
 */
function renewalMetrics(registry: Registry): {
  expiry: Gauge<'certificate'>;
  renewals: Counter<'certificate' | 'result'>;
} {
  const expiry =
    (registry.getSingleMetric(EXPIRY_METRIC) as Gauge<'certificate'> | undefined) ??
    new Gauge({
      name: EXPIRY_METRIC,
      help: 'notAfter of a certificate the node renews (Unix seconds), by certificate (identity, acme-https)',
      labelNames: ['certificate'] as const,
      registers: [registry],
    });
  const renewals =
    (registry.getSingleMetric(RENEWALS_METRIC) as Counter<'certificate' | 'result'> | undefined) ??
    new Counter({
      name: RENEWALS_METRIC,
      help: 'Attempts to renew a certificate of the node, by certificate (identity, acme-https) and result (renewed, refused, failed)',
      labelNames: ['certificate', 'result'] as const,
      registers: [registry],
    });
  return { expiry, renewals };
}

/**
 * The one sender of the node's `ca` renewals (all signed by its identity key): the instances
 * sharing it queue their bodies under distinct keys, and the sender submits one at a time
 * with the committed sequence, so renewals due at the same block never race for a sequence
 * number; each instance is told of its own submissions only.
 */
export class RenewalSender {
  readonly sender: NodeTxSender;
  private readonly listeners = new Map<
    string,
    (result: MempoolAddResult, txHash: string) => void
  >();

  constructor(options: {
    readonly chainId: string;
    readonly stampDifficulty: number;
    /** The node's identity key (Ed25519). */
    readonly privateKey: KeyObject;
    readonly query: (request: QueryRequest) => QueryResponse;
    readonly submit: (tx: Uint8Array) => Promise<MempoolAddResult>;
    readonly pending: (txHash: Uint8Array) => boolean;
  }) {
    this.sender = new NodeTxSender({
      chainId: options.chainId,
      stampDifficulty: options.stampDifficulty,
      privateKey: options.privateKey,
      query: options.query,
      submit: options.submit,
      pending: options.pending,
      module: CA_MODULE_NAME,
      onSubmit: (key, result, txHash) => this.listeners.get(key)?.(result, txHash),
    });
  }

  /** Tells `listener` of the submissions of bodies queued under `key`. */
  listen(key: string, listener: (result: MempoolAddResult, txHash: string) => void): void {
    if (this.listeners.has(key)) throw new RangeError(`renewals under ${key} are sent already`);
    this.listeners.set(key, listener);
  }
}

export interface CertRenewalOptions {
  /** Which certificate this is (metric label, log messages); default `identity`. */
  readonly certificate?: RenewedCertificate;
  /**
   * The PEM chain, leaf first, the node runs with: `identity.certificateFile`, or
   * `acme.certificateFile` for `acme-https`. Its leaf must certify `privateKey`.
   */
  readonly certificateFile: string;
  /** `identity.renewAt` (0 ≤ renewAt < 1); default `DEFAULT_RENEW_AT`. */
  readonly renewAt?: number;
  readonly ca: CaModuleConfig;
  readonly chainId: string;
  readonly stampDifficulty: number;
  /** The node's identity key (Ed25519): signs the renewal. */
  readonly privateKey: KeyObject;
  /**
   * The node's FALCON-1024 secret key: proves possession of the certificate's FALCON key in the
   * request a genesis certificate's renewal carries. Without it such a renewal fails (logged).
   */
  readonly falconSecretKey?: Uint8Array;
  /** The committed state (full keys, with the router's module prefix). */
  readonly state: { get(key: Uint8Array): Uint8Array | null };
  readonly query: (request: QueryRequest) => QueryResponse;
  readonly submit: (tx: Uint8Array) => Promise<MempoolAddResult>;
  readonly pending: (txHash: Uint8Array) => boolean;
  /**
   * The sender shared with the node's other renewals (same `privateKey`); absent: the instance
   * sends through its own.
   */
  readonly sender?: RenewalSender;
  /**
   * Presents the new chain (DER, leaf first) on new handshakes of the server using it (STOQ for
   * the identity certificate, the ACME HTTPS face for `acme-https`); throws if refused.
   */
  readonly replaceChain: (chain: readonly Uint8Array[]) => void;
  /**
   * Called with the new chain (DER, leaf first) once it is kept and offered to `replaceChain`
   * (written to the file unless that failed): the other servers presenting it follow
   * (identity-servers.ts). What it throws is logged, nothing more.
   */
  readonly onRenewed?: (chain: readonly Uint8Array[]) => void;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly falcon?: FalconBackend;
  readonly now?: () => Date;
}

export interface CertRenewal {
  /** After each commit (and once at start): renews when due, follows a renewal in flight. */
  committed(height: number): void;
  /** Resolves when the work started so far has finished (for tests). */
  idle(): Promise<void>;
  /** Stops following commits; resolves once a step in progress has finished. */
  close(): Promise<void>;
}

type Phase =
  | { readonly kind: 'idle' }
  | { readonly kind: 'queued'; readonly since: number }
  | { readonly kind: 'submitted'; readonly txHash: Uint8Array; readonly since: number }
  | { readonly kind: 'issued'; readonly serial: Uint8Array; readonly since: number }
  | { readonly kind: 'off' };

function describe(error: unknown): string {
  if (error instanceof HyperMeshError) return `${error.message} [${error.code}]`;
  return error instanceof Error ? error.message : String(error);
}

async function readChain(file: string): Promise<Uint8Array[]> {
  const chain = pemToDerList(await fs.readFile(file, 'utf8'));
  if (chain.length === 0) throw new Error(`${file} holds no PEM certificate`);
  return chain;
}

/**
 * Why the directory a renewal writes `file` in (a symbolic link's target's, as
 * `writeFileAtomically` replaces the target) cannot take a new file, or null. A read-only mount
 * or a Kubernetes secret volume says so here, at start, rather than at the first renewal.
 */
async function unwritableReason(
  file: string,
): Promise<{ directory: string; error: string } | null> {
  let directory = path.dirname(file);
  try {
    directory = path.dirname(await fs.realpath(file));
    await fs.access(directory, constants.W_OK | constants.X_OK);
    return null;
  } catch (error) {
    return { directory, error: describe(error) };
  }
}

/** A renewal issued and kept, not yet both written to its file and presented by its server. */
interface Delivery {
  readonly chain: readonly Uint8Array[];
  readonly leaf: ParsedCertificate;
  written: boolean;
  handedOver: boolean;
  /** Failed attempts so far; the next one waits for `notBefore`. */
  attempts: number;
  notBefore: number;
}

/** When `leaf` is due for renewal (ms since the epoch). */
export function renewalDue(leaf: ParsedCertificate, renewAt: number): number {
  const from = leaf.notBefore.getTime();
  return from + renewAt * (leaf.notAfter.getTime() - from);
}

/**
 * Reads `certificateFile` and starts following its certificate. Returns null (after logging
 * why) when it is not one the node can renew: neither issued through consensus nor a genesis
 * bootstrap certificate of this cluster.
 */
export async function startCertRenewal(options: CertRenewalOptions): Promise<CertRenewal | null> {
  const { logger } = options;
  const renewAt = options.renewAt ?? DEFAULT_RENEW_AT;
  if (!(renewAt >= 0 && renewAt < 1)) {
    throw new RangeError(`identity.renewAt must be at least 0 and below 1, got ${renewAt}`);
  }
  const now = options.now ?? (() => new Date());
  const certificate = options.certificate ?? 'identity';
  const what = `${certificate} certificate`;
  const renewKey = `${certificate}-certificate`;
  const file = options.certificateFile;
  const reader = new CaStateReader({ get: (key) => options.state.get(caStateKey(key)) });
  const falcon = options.falcon ?? defaultFalcon();
  const view = createIssuerView(options.ca, falcon);

  /** The newest certificate the node holds: the one renewed next. */
  let leaf = parseCertificate((await readChain(file))[0] as Uint8Array);
  /** The certificate its server presents (the expiry gauge and the expiry error follow it). */
  let presented = leaf;
  const serialOf = (parsed: ParsedCertificate): Uint8Array =>
    Uint8Array.from(Buffer.from(parsed.serialNumber, 'hex'));

  const metrics = renewalMetrics(options.registry);
  const expiry = metrics.expiry.labels({ certificate });
  const renewals = {
    inc: ({ result }: { result: RenewalResult }, by = 1): void =>
      metrics.renewals.inc({ certificate, result }, by),
  };
  for (const result of ['renewed', 'refused', 'failed'] satisfies RenewalResult[]) {
    renewals.inc({ result }, 0);
  }
  expiry.set(leaf.notAfter.getTime() / 1000);

  if (!new X509Certificate(leaf.der).checkPrivateKey(options.privateKey)) {
    logger.info(`${what} does not certify the node's identity key: not renewed automatically`, {
      certificate,
      serial: leaf.serialNumber,
      file,
    });
    return null;
  }
  if (lacksIssuanceExtensions(leaf.der)) {
    const serial = serialOf(leaf);
    if (!options.ca.genesisCertificates.some((entry) => bytesEqual(entry.serial, serial))) {
      logger.info(`${what} not issued through consensus: not renewed automatically`, {
        certificate,
        serial: leaf.serialNumber,
        notAfter: leaf.notAfter.toISOString(),
      });
      return null;
    }
  }
  const unwritable = await unwritableReason(file);
  if (unwritable !== null) {
    logger.error(
      `${what} file cannot be replaced: its directory is not writable, so a renewal will be presented but not saved, and a restart goes back to the certificate in the file`,
      { certificate, file, directory: unwritable.directory, error: unwritable.error },
    );
  }

  let phase: Phase = { kind: 'idle' };
  /** No new attempt before this height (backoff, or waiting for the state to know the serial). */
  let notBefore = 0;
  let failures = 0;
  /** The serial this process renewed last (MIN_RENEWED_AGE_MS applies to it). */
  let renewedHere: string | null = null;
  /** The renewal issued last, while it is not yet both written and presented. */
  let delivery: Delivery | null = null;
  /** When (the node's clock, ms) the expiry error was last logged. */
  let expiryLoggedAt: number | null = null;
  let closed = false;
  let running: Promise<void> = Promise.resolve();
  let busy = false;
  let latest = 0;

  const shared =
    options.sender ??
    new RenewalSender({
      chainId: options.chainId,
      stampDifficulty: options.stampDifficulty,
      privateKey: options.privateKey,
      query: options.query,
      submit: options.submit,
      pending: options.pending,
    });
  const sender = shared.sender;
  shared.listen(renewKey, (result, txHash) => {
    if (phase.kind !== 'queued') return;
    if (result.ok) {
      phase = { kind: 'submitted', txHash: Buffer.from(txHash, 'hex'), since: latest };
      logger.info(`${what} renewal submitted`, {
        certificate,
        serial: leaf.serialNumber,
        tx: txHash,
      });
    } else if (!sender.queued(renewKey)) {
      fail('refused', `${result.code}: ${result.message}`);
    }
  });

  /** Counts and logs a failed attempt and waits its backoff; the phase stays as it is. */
  const backOff = (result: Exclude<RenewalResult, 'renewed'>, reason: string): void => {
    failures += 1;
    const backoff = backoffBlocks(failures);
    notBefore = latest + backoff;
    renewals.inc({ result });
    logger.warn(`${what} renewal failed`, {
      certificate,
      serial: leaf.serialNumber,
      result,
      reason,
      retryInBlocks: backoff,
    });
  };

  /** A failed attempt before anything was issued: the next one starts afresh. */
  const fail = (result: Exclude<RenewalResult, 'renewed'>, reason: string): void => {
    backOff(result, reason);
    phase = { kind: 'idle' };
  };

  /** Logs an error when the presented certificate nears its end (once per interval). */
  const checkExpiry = (): void => {
    const at = now().getTime();
    const from = presented.notBefore.getTime();
    const until = presented.notAfter.getTime();
    if (until - at >= EXPIRY_ERROR_SHARE * (until - from)) return;
    if (expiryLoggedAt !== null && at - expiryLoggedAt < EXPIRY_ERROR_INTERVAL_MS) return;
    expiryLoggedAt = at;
    logger.error(
      at >= until ? `${what} has expired` : `${what} expires soon and has not been renewed`,
      {
        certificate,
        serial: presented.serialNumber,
        notAfter: presented.notAfter.toISOString(),
        secondsLeft: Math.max(0, Math.floor((until - at) / 1000)),
        renewal: delivery === null ? phase.kind : 'installing',
        failures,
      },
    );
  };

  const due = (): boolean => {
    const at = now().getTime();
    if (at < renewalDue(leaf, renewAt)) return false;
    return renewedHere !== leaf.serialNumber || at >= leaf.notBefore.getTime() + MIN_RENEWED_AGE_MS;
  };

  /**
   * Starts an attempt if the certificate is due and the committed state can take it; whether
   * a renewal was queued.
   */
  const begin = async (height: number): Promise<boolean> => {
    if (height < notBefore || !due()) return false;
    const serial = serialOf(leaf);
    // A genesis certificate is in the state from height 1 on; an issued one once published.
    const genesis = reader.genesisCertificate(serial) !== null;
    const txHash = genesis ? null : reader.issuanceTx(serial);
    const record = txHash === null ? null : reader.issuance(txHash);
    if ((!genesis && record === null) || reader.certificate(serial) === null) {
      // The node follows the chain and has not reached the certificate's publication yet.
      logger.debug(`${what} due for renewal, not yet in the committed state`, {
        certificate,
        serial: leaf.serialNumber,
        height,
      });
      notBefore =
        height +
        (lacksIssuanceExtensions(leaf.der) ? GENESIS_RECHECK_BLOCKS : NOT_KNOWN_RECHECK_BLOCKS);
      return false;
    }
    if (reader.revocation(serial) !== null) {
      logger.warn(`${what} is revoked: not renewed`, { certificate, serial: leaf.serialNumber });
      phase = { kind: 'off' };
      return false;
    }
    // A genesis certificate's renewal gets the profile's longest lifetime (the policy's), an
    // issued one its committed lifetime; both cut to end inside the issuable window.
    const lifetime = renewalLifetimeSeconds(
      record?.lifetimeSeconds ?? null,
      defaultLifetimeSeconds(options.ca.policy, genesisCertificateProfile(leaf) ?? 'node'),
      view.issuableWindow({ get: (key) => options.state.get(caStateKey(key)) }).until,
      now().getTime(),
    );
    const body =
      record === null
        ? caRenewBody(
            serial,
            lifetime,
            await genesisRenewalRequest(
              leaf.der,
              {
                privateKey: options.privateKey,
                ...(options.falconSecretKey === undefined
                  ? {}
                  : { falconSecretKey: options.falconSecretKey }),
              },
              falcon,
            ),
            falcon,
          )
        : caRenewBody(serial, lifetime);
    sender.enqueue(renewKey, body);
    phase = { kind: 'queued', since: height };
    return true;
  };

  /**
   * Writes the kept renewal to the file and hands it to its server (`replaceChain`), whichever
   * of the two has not worked yet; a failure is logged at `error` and retried after a backoff.
   * Whether both are done.
   */
  const deliver = async (pending: Delivery, height: number): Promise<boolean> => {
    const problems: { writeError?: string; serverError?: string } = {};
    if (!pending.written) {
      try {
        await writeFileAtomically(file, pending.chain.map((entry) => derToPem(entry)).join(''));
        pending.written = true;
      } catch (error) {
        problems.writeError = describe(error);
      }
    }
    if (!pending.handedOver) {
      try {
        options.replaceChain(pending.chain);
        pending.handedOver = true;
        presented = pending.leaf;
        expiry.set(presented.notAfter.getTime() / 1000);
      } catch (error) {
        problems.serverError = describe(error);
      }
    }
    const serial = pending.leaf.serialNumber;
    if (pending.written && pending.handedOver) {
      if (pending.attempts > 0) {
        logger.info(`renewed ${what} installed`, { certificate, serial, file, height });
      }
      if (delivery === pending) delivery = null;
      return true;
    }
    pending.attempts += 1;
    const backoff = backoffBlocks(pending.attempts);
    pending.notBefore = height + backoff;
    logger.error(
      `renewed ${what} ${pending.written ? 'written' : 'not written to its file'} and ${pending.handedOver ? 'presented' : 'not taken by its server'}: kept and retried, not renewed again`,
      {
        certificate,
        serial,
        file,
        written: pending.written,
        presented: pending.handedOver,
        ...problems,
        retryInBlocks: backoff,
      },
    );
    return false;
  };

  /**
   * Keeps the published renewal (the certificate renewed next from now on, whatever happens to
   * its file), then writes it and hands it to its server (`deliver`).
   */
  const install = async (der: Uint8Array, issuer: string, height: number): Promise<void> => {
    const fresh = parseCertificate(der);
    if (
      !bytesEqual(fresh.subjectPublicKeyInfo, leaf.subjectPublicKeyInfo) ||
      fresh.uris.join('\n') !== leaf.uris.join('\n')
    ) {
      throw new Error(
        `the published renewal ${fresh.serialNumber} does not certify this node's key and names`,
      );
    }
    const intermediate = view
      .issuers({ get: (key) => options.state.get(caStateKey(key)) })
      .find((candidate) => candidate.name === issuer);
    if (intermediate === undefined) {
      throw new Error(`the renewal's issuer ${issuer} is not an intermediate in effect`);
    }
    const pending: Delivery = {
      chain: [der, intermediate.issuer.certificate],
      leaf: fresh,
      written: false,
      handedOver: false,
      attempts: 0,
      notBefore: 0,
    };
    const old = leaf;
    leaf = fresh;
    renewedHere = fresh.serialNumber;
    failures = 0;
    phase = { kind: 'idle' };
    delivery = pending;
    renewals.inc({ result: 'renewed' });
    await deliver(pending, height);
    logger.info(renewedLogMessage(certificate), {
      certificate,
      oldSerial: old.serialNumber,
      newSerial: fresh.serialNumber,
      notAfter: fresh.notAfter.toISOString(),
      issuer,
      height,
      file,
      written: pending.written,
      presented: pending.handedOver,
    });
    try {
      options.onRenewed?.(pending.chain);
    } catch (error) {
      logger.error(`renewed ${what} not handed to the other servers`, {
        certificate,
        serial: fresh.serialNumber,
        error: describe(error),
      });
    }
  };

  const step = async (height: number): Promise<void> => {
    switch (phase.kind) {
      case 'off':
        return;
      case 'idle':
        if (await begin(height)) await sender.pump();
        return;
      case 'queued':
        await sender.pump();
        return;
      case 'submitted': {
        const record = reader.issuance(phase.txHash);
        if (record !== null) {
          phase = { kind: 'issued', serial: record.serial, since: height };
          await step(height);
          return;
        }
        if (options.pending(phase.txHash)) return;
        const answer = options.query({ path: TX_RESULT_QUERY, data: phase.txHash });
        if (answer.value !== null) {
          const result = decodeRecordedTxResult(answer.value);
          fail('refused', `refused at height ${result.height}: ${result.log}`);
        } else {
          fail('failed', 'the renewal left the mempool without being committed');
        }
        return;
      }
      case 'issued': {
        if (height < notBefore) return;
        const published = reader.certificate(phase.serial);
        if (published === null) {
          if (height - phase.since > PUBLISH_WAIT_BLOCKS) {
            fail(
              'failed',
              `renewal ${toHex(phase.serial)} not published within ${PUBLISH_WAIT_BLOCKS} blocks`,
            );
          }
          return;
        }
        try {
          await install(published.der, published.issuer, height);
        } catch (error) {
          // Issued already: a new `renew` would issue another certificate, so this one is
          // tried again after the backoff.
          backOff('failed', describe(error));
        }
      }
    }
  };

  const run = async (): Promise<void> => {
    busy = true;
    try {
      let done = -1;
      while (!closed && done !== latest) {
        done = latest;
        try {
          if (delivery !== null && done >= delivery.notBefore) await deliver(delivery, done);
          await step(done);
        } catch (error) {
          fail('failed', describe(error));
        }
      }
    } finally {
      busy = false;
    }
  };

  const renewal: CertRenewal = {
    committed(height) {
      if (closed) return;
      latest = Math.max(latest, height);
      checkExpiry();
      // A commit while a step runs is taken by that run's loop.
      if (!busy) running = run();
    },
    idle: async () => {
      while (busy) await running;
    },
    close: async () => {
      closed = true;
      while (busy) await running;
    },
  };
  return renewal;
}
