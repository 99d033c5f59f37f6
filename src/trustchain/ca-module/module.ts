import { createPublicKey, verify as verifySignature } from 'node:crypto';
import type {
  CheckContext,
  EndBlockContext,
  ExecutionContext,
  Module,
  ModuleQueryAnswer,
  ModuleState,
  ModuleStateReader,
} from '../../consensus/application/module.js';
import type { ValidatorUpdate } from '../../consensus/app.js';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { ed25519Verify } from '../../crypto/ed25519.js';
import { sha256 } from '../../crypto/hash.js';
import { defaultFalcon, type FalconBackend } from '../../crypto/falcon.js';
import { CaError } from '../ca/errors.js';
import { certificateSerial, parseIssuer as parseIssuerOf, validityOf } from '../ca/issue.js';
import { readTbs, splitCertificate } from '../ca/certificate.js';
import { checkValidatorIntermediate } from '../ca/hierarchy.js';
import { isValidatorName } from '../ca/bundle.js';
import { parseCertificate } from '../../crypto/x509.js';
import { rateLimitExhausted, rateLimitStep, rateWindowStart } from '../ca/rate-limit.js';
import {
  checkRequest,
  decodeCertificateRequestCached,
  encodeCertificateRequest,
  type CertificateRequest,
} from '../ca/request.js';
import {
  REVOCATION_REASONS,
  decodeCaBody,
  revocationMessage,
  type CaAddIntermediateTx,
  type CaApproveIntermediateTx,
  type CaPublishTx,
  type CaRenewTx,
  type CaRevokeTx,
  type CaTx,
} from './body.js';
import {
  eligibleIssuers,
  firstIssuerIndex,
  requesterFor,
  type CaIssuer,
  type CaModuleConfig,
  type CaRequester,
} from './config.js';
import { CLUSTER_DNS_MODULE, ClusterDnsReader } from './cluster-dns.js';
import {
  DCV_REUSE_MAX_MS,
  dcvIdentifier,
  dcvQuorum,
  dcvQuorumShortfall,
  decodeDcvAttestation,
  verifyDcvAttestation,
  type DcvAttestation,
} from './dcv.js';
import { VOTING_POWERS_KEY, readDcvElectorate, votingPowersUpdate } from './voting-power.js';
import {
  compromisedKeyKey,
  encodeCompromisedKey,
  encodeKeyCertificates,
  keyCertificatesKey,
  readCompromisedKey,
  readKeyCertificates,
  subjectKeyHash,
  withKeyCertificate,
  type KeyCertificate,
} from './compromised-keys.js';
import { CaModuleError, CaModuleErrorCode } from './errors.js';
import {
  ADDED_INTERMEDIATES_KEY,
  MAX_INTERMEDIATE_PROPOSALS,
  MIN_INTERMEDIATE_REMAINING_MS,
  PROPOSALS_KEY,
  IntermediateStateReader,
  abandonedProposalKey,
  addedIntermediateKey,
  approvalQuorumReached,
  createIssuerView,
  encodeAddedIntermediate,
  encodeHashList,
  encodeNameList,
  encodeProposal,
  holderOf,
  proposalHash,
  proposalKey,
  type IntermediateProposal,
} from './intermediates.js';
import { genesisRenewalMismatch, genesisRenewalRequester } from './genesis-renewal.js';
import { verifyPublication } from './publication.js';
import { BoundedMap } from '../../codec/bounded-map.js';
import { TREE_HEAD_KEY, appendCertificates, encodeTreeHead } from './tree-head.js';
import {
  CA_MODULE_NAME,
  CaRecordCache,
  CaStateReader,
  MAX_BATCH_CERTIFICATES,
  MAX_PENDING_BATCHES,
  PENDING_KEY,
  RATE_WINDOW_KEY,
  batchKey,
  certificateKey,
  encodeCertificateRecord,
  encodePublished,
  encodeRateWindowStart,
  encodeRevocation,
  publishedKey,
  rateKey,
  requestKey,
  revocationKey,
  revokedCountKey,
  revokedPageKey,
  appendRevoked,
  genesisCertificateKey,
  serialKey,
  type IssuanceRecord,
} from './state.js';

/** Query paths of the module (`ca/<path>`) and the data each takes. */
export const CA_QUERIES = {
  /** 32-byte txHash → the issuance record (`ca/req/<txHash>`). */
  request: 'request',
  /** 16-byte serial → the issuance txHash. */
  serial: 'serial',
  /** 16-byte serial → the published certificate record. */
  certificate: 'certificate',
  /** 16-byte serial → the revocation record. */
  revocation: 'revocation',
  /** empty → the pending heights. */
  pending: 'pending',
  /** 8-byte big-endian height → that block's pending batch. */
  batch: 'batch',
  /** 8-byte big-endian height → the serials published by that block. */
  published: 'published',
  /** UTF-8 validator name → how many of its intermediate's certificates are revoked (`{n}`). */
  revoked: 'revoked',
  /**
   * 8-byte big-endian page number, then the UTF-8 validator name → that page of its revoked
   * serials (pages 0 … ⌈n / REVOKED_PAGE_SERIALS⌉ − 1, in revocation order).
   */
  revokedPage: 'revoked-page',
  /** empty → the transparency log's tree head (tree-head.ts; absent: the empty log). */
  treeHead: 'tree-head',
  /** 16-byte serial → a genesis bootstrap certificate's owner record (genesis.ts). */
  genesisCertificate: 'genesis-certificate',
  /** empty → the open intermediate proposals' hashes (intermediates.ts). */
  intermediateProposals: 'intermediate-proposals',
  /** 32-byte SHA-256 of an intermediate's DER → its proposal. */
  intermediateProposal: 'intermediate-proposal',
  /** empty → the names of the intermediates added after genesis, in activation order. */
  addedIntermediates: 'intermediates',
  /** UTF-8 validator name → its added intermediate. */
  addedIntermediate: 'intermediate',
} as const;

const C = CaModuleErrorCode;

/** DCV signature verification results kept (by SHA-256 of the attestation), oldest dropped first. */
const DCV_VERIFICATION_CACHE_ENTRIES = 4096;

function refuse(
  code: CaModuleErrorCode,
  message: string,
  detail: Record<string, unknown> = {},
): never {
  throw new CaModuleError(code, message, detail);
}

/** An issuance (request or renewal) that passed every check but those needing the block time. */
interface CheckedIssuance {
  readonly request: CertificateRequest;
  readonly lifetimeSeconds: number;
  readonly renews: Uint8Array | null;
  /**
   * The account the issuance is on behalf of: the sender of a request; for a renewal, the
   * original request's account (also when the certified key sent it). Its grant, rate window
   * and record are the ones used.
   */
  readonly account: Uint8Array;
  /** For a renewal: what execution checks at the block's time (`checkRenewalTime`). */
  readonly renewal: RenewalTimes | null;
  /** SHA-256 of the subject key (compromised-keys.ts `subjectKeyHash`). */
  readonly keyHash: Uint8Array;
}

/** RFC 5280 §5.3.1 CRLReason keyCompromise. */
const KEY_COMPROMISE = 1;

/** The block-time facts of a renewal: checked at execution, where the block time is known. */
interface RenewalTimes {
  /** notAfter (ms) of the certificate renewed: an expired certificate proves nothing. */
  readonly notAfter: number;
  /** When the names were validated (`IssuanceRecord.validatedAt`), inherited by the new record. */
  readonly validatedAt: number;
  /** Whether the names need DCV (a `requireDcv` grant, names not owned in the `dns` module). */
  readonly needsDcv: boolean;
}

function parseRequest(bytes: Uint8Array, falcon: FalconBackend): CertificateRequest {
  try {
    return decodeCertificateRequestCached(bytes, { falcon });
  } catch (error) {
    if (error instanceof CaError) {
      refuse(C.INVALID_REQUEST, error.message, { reason: error.code, ...error.detail });
    }
    throw error;
  }
}

/** Whether `spki` (a DER SubjectPublicKeyInfo) is the Ed25519 public key `raw` (32 bytes). */
function isEd25519Spki(spki: Uint8Array, raw: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'ed25519') return false;
    const { x } = key.export({ format: 'jwk' });
    return typeof x === 'string' && bytesEqual(Buffer.from(x, 'base64url'), raw);
  } catch {
    return false;
  }
}

/** Whether `signature` over `message` verifies with `spki` (a DER SubjectPublicKeyInfo). */
function subjectKeySigned(spki: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    // ed25519Verify refuses keys of small order, which OpenSSL alone would accept.
    if (key.asymmetricKeyType === 'ed25519') return ed25519Verify(signature, message, key);
    if (key.asymmetricKeyType === 'ec') {
      return verifySignature('sha256', message, { key, dsaEncoding: 'der' }, signature);
    }
    return verifySignature('sha256', message, key, signature);
  } catch {
    return false;
  }
}

/**
 * The `ca` module (docs/ca.md, "The ca module"): certificate requests, renewals and revocations
 * as transactions, and the publication of each block's certificates by a validator's
 * intermediate in a later block, checked by every validator.
 */
/** Publications whose full check is remembered (one per block with certificates). */
const PUBLICATION_CACHE_ENTRIES = 256;

export function createCaModule(
  config: CaModuleConfig,
  options: { readonly falcon?: FalconBackend } = {},
): Module<CaTx> {
  const falcon = options.falcon ?? defaultFalcon();
  // check() and apply() of one transaction run back to back on the same state with the same
  // decoded body; the verified certificates are kept for apply() by that object.
  const verified = new WeakMap<CaPublishTx, Uint8Array[]>();
  // A publication is checked at admission and again in its block (decoded afresh each time).
  // Its full check (every TBS rebuilt, every P-256 and the FALCON batch signature verified) is
  // a pure function of the transaction, the issuer's intermediate and the batch of a committed
  // block, none of which change: it runs once per transaction hash and issuer. Who may publish
  // when (the rotation) depends on the height and is checked every time.
  const publications = new BoundedMap<string, Uint8Array[]>(PUBLICATION_CACHE_ENTRIES);
  const view = createIssuerView(config, falcon);
  // Decoded batches, issuance records, rate windows and the pending list (state.ts), each
  // returned only for the bytes it came from.
  const records = new CaRecordCache();
  const checkedIssuances = new WeakMap<CaTx, CheckedIssuance>();
  // A request is checked at admission and again in its block (decoded afresh each time), so
  // attestation signatures are verified once: verification is a pure function of the bytes.
  const dcvVerifications = new Map<string, boolean>();

  /**
   * The account's issuance window at the latest committed block (docs/ca.md, "Rate limit at
   * admission and execution"), so an account that used it up is refused at admission, before
   * the mempool. `check` has no block time: it compares with the window that block recorded
   * (`ca/rate-window`, written by `endBlock`), which admission and a block's `check` read alike. `apply` decides again at the
   * block's time (`rateLimitStep`), and only it counts the issuance. Before any block recorded a
   * window, execution alone decides.
   */
  function checkRateLimit(state: CaStateReader, account: Uint8Array): void {
    const currentStart = state.rateWindowStart();
    if (currentStart === null) return;
    const exhausted = rateLimitExhausted(state.rateWindow(account), currentStart, config.rateLimit);
    if (exhausted === null) return;
    refuse(
      C.RATE_LIMITED,
      `issuance rate limit reached: ${exhausted.count} of ${config.rateLimit.max} in the window ending ${new Date(exhausted.windowEnd * 1000).toISOString()}; retry after it`,
      { retryAt: exhausted.windowEnd, max: config.rateLimit.max },
    );
  }

  /**
   * The block's and the publication backlog's room. Both refusals are deferrable
   * (`CA_DEFERRABLE_CODES`): a proposer leaves the request for a later block, and `checkTx`
   * admits it. So this runs after every check of the request itself.
   */
  function checkCapacity(state: CaStateReader, height: number): void {
    const batch = state.batch(height);
    if (batch !== null && batch.items.length >= MAX_BATCH_CERTIFICATES) {
      refuse(C.BLOCK_FULL, `block ${height} already holds ${MAX_BATCH_CERTIFICATES} issuances`);
    }
    if (batch === null && state.pending().length >= MAX_PENDING_BATCHES) {
      refuse(C.BACKLOG, `${MAX_PENDING_BATCHES} blocks' certificates are waiting for publication`);
    }
  }

  /**
   * The policy (`checkRequest`) for `requester`, where a DNS name in `owned` (names the account
   * owns in the `dns` module) is allowed although no grant covers it: its `name_not_allowed`
   * is dropped. Returns the certificate's lifetime.
   */
  function checkPolicy(
    request: CertificateRequest,
    requester: CaRequester,
    owned: ReadonlySet<string>,
  ): number {
    const decision = checkRequest(request, config.policy, requester);
    if (decision.ok) return decision.lifetimeSeconds;
    const refusals = decision.refusals.filter(
      (refusal) =>
        !(refusal.code === 'name_not_allowed' && refusal.kind === 'dns' && owned.has(refusal.name)),
    );
    if (refusals.length > 0) {
      refuse(C.POLICY_REFUSED, `refused: ${refusals.map((refusal) => refusal.code).join(', ')}`, {
        refusals,
      });
    }
    // Only owned names lay outside the grants: with DNS names unrestricted (and nothing else
    // changed), the policy gives the lifetime.
    const lifted = checkRequest(request, config.policy, { ...requester, externalDns: true });
    if (!lifted.ok) throw new RangeError('the policy refused only owned names, then refused more');
    return lifted.lifetimeSeconds;
  }

  /**
   * The `dns` module's state as this call sees it (`ctx.foreign`, the same state as
   * `ctx.state`), or null on a chain without the module. A fresh reader per call: nothing read
   * from it outlives the check it was read for.
   */
  function clusterDnsOf(ctx: CheckContext | ExecutionContext): ClusterDnsReader | null {
    if (config.clusterDns === null) return null;
    if (ctx.foreign === undefined) {
      throw new RangeError(
        `the ca module reads the ${CLUSTER_DNS_MODULE} module: its context needs foreign`,
      );
    }
    return new ClusterDnsReader(ctx.foreign(CLUSTER_DNS_MODULE));
  }

  /**
   * CAA in consensus (docs/ca.md, "CAA in consensus"): every DNS name of the request that lies
   * in a zone of the `dns` module needs CAA records that authorise the cluster CA (its genesis
   * identities, `CaClusterDns.caaIdentities`), whoever asks and whatever grant allows the name.
   */
  function checkCaa(
    dns: ClusterDnsReader,
    request: CertificateRequest,
    corroborated: ReadonlySet<string>,
  ): void {
    const identities = config.clusterDns?.caaIdentities ?? [];
    for (const name of request.dnsNames) {
      // A name with a quorum of DCV attestations: each holder's `ok` covers its own CAA check
      // with the ACME account and the validation method it saw (RFC 8657), which the module
      // does not know; the issuer names are still checked here.
      const refusal = dns.caaRefusal(name, identities, {
        parametersChecked: corroborated.has(name),
      });
      if (refusal === null) continue;
      const why =
        refusal.reason === 'unknown_critical_property'
          ? `an unknown critical property ${JSON.stringify(refusal.tag)}`
          : refusal.reason === 'cname_chain'
            ? 'a CNAME chain too long to follow'
            : `no ${name.startsWith('*.') ? 'issuewild/issue' : 'issue'} property authorising ${identities.join(', ') || 'the cluster CA'}`;
      refuse(
        C.CAA_REFUSED,
        `CAA records at ${refusal.domain} forbid issuance for ${name}: ${why}`,
        {
          ...refusal,
        },
      );
    }
  }

  /** The issuance a published, unrevoked serial came from; refuses otherwise. */
  function publishedIssuance(state: CaStateReader, serial: Uint8Array): IssuanceRecord {
    const txHash = state.issuanceTx(serial);
    const record = txHash === null ? null : state.issuance(txHash);
    if (record === null) refuse(C.UNKNOWN_SERIAL, `no certificate with serial ${toHex(serial)}`);
    if (state.certificate(serial) === null) {
      refuse(C.NOT_PUBLISHED, `certificate ${toHex(serial)} is not published yet`);
    }
    if (state.revocation(serial) !== null)
      refuse(C.REVOKED, `certificate ${toHex(serial)} is revoked`);
    return record;
  }

  /**
   * Who may revoke a published, unrevoked serial (docs/ca.md, "Transactions"): the account that
   * requested it — for a genesis bootstrap certificate, the account its genesis entry names
   * (`ca/gen/<serial>`) — or anyone with a signature by the certificate's subject key. Refuses
   * an unknown, unpublished or revoked serial.
   */
  function revocationAuthority(
    state: CaStateReader,
    serial: Uint8Array,
  ): { account: Uint8Array; subjectKey: () => Uint8Array } {
    const genesis = state.genesisCertificate(serial);
    if (genesis === null) {
      const record = publishedIssuance(state, serial);
      return {
        account: record.account,
        subjectKey: () => parseRequest(record.request, falcon).csr.subjectPublicKeyInfo,
      };
    }
    const certificate = state.certificate(serial);
    if (certificate === null) throw new RangeError('a genesis certificate has no record');
    if (state.revocation(serial) !== null) {
      refuse(C.REVOKED, `certificate ${toHex(serial)} is revoked`);
    }
    return {
      account: genesis.account,
      subjectKey: () => readTbs(splitCertificate(certificate.der).tbs).subjectPublicKeyInfo,
    };
  }

  function dcvSignatureValid(attestation: DcvAttestation): boolean {
    const key = toHex(sha256(attestation.bytes));
    const known = dcvVerifications.get(key);
    if (known !== undefined) return known;
    const valid = verifyDcvAttestation(attestation);
    if (dcvVerifications.size >= DCV_VERIFICATION_CACHE_ENTRIES) {
      const oldest = dcvVerifications.keys().next();
      if (oldest.done !== true) dcvVerifications.delete(oldest.value);
    }
    dcvVerifications.set(key, valid);
    return valid;
  }

  /**
   * Multi-perspective validation (docs/ca.md, "Multi-perspective validation (MPIC)"). Every
   * attached attestation must decode (`CA_DCV_INVALID`), whoever sends them. For a sender whose
   * grant has `requireDcv`, each DNS name and IP address of the request needs ok attestations
   * of its own form — `wildcard: true` by dns-01 for `*.x` (as `dns:x`; RFC 8555 §7.1.3, and the
   * CAA check behind them was for `issuewild`, RFC 8659 §4.3), `wildcard: false` for `x` — for
   * this chain and sender from distinct current intermediate
   * holders, signed at a height in [height - dcvMaxAgeBlocks, height], whose validators hold
   * more than 2/3 of the current validator set's voting power (`dcvQuorum` over
   * `readDcvElectorate`: a holder outside the set adds nothing); anything else is not counted
   * (`CA_DCV_QUORUM`).
   */
  function checkDcv(
    raw: ModuleStateReader,
    chainId: string,
    height: number,
    issuers: readonly CaIssuer[],
    request: CertificateRequest,
    dcv: readonly Uint8Array[],
    sender: Uint8Array,
    requester: CaRequester,
    owned: ReadonlySet<string>,
  ): ReadonlySet<string> {
    const attestations = dcv.map((bytes, index) => {
      try {
        return decodeDcvAttestation(bytes);
      } catch (error) {
        if (error instanceof CaModuleError) {
          refuse(C.DCV_INVALID, `dcv[${index}]: ${error.message}`, { index, ...error.detail });
        }
        throw error;
      }
    });
    if (!requester.requireDcv) return new Set();
    // A name the sender owns in the `dns` module needs no DCV: the state proves control.
    // An attestation for `x` proves control of `x` only; `*.x` needs the wildcard validation.
    const subject = (identifier: string, wildcard: boolean): string =>
      wildcard ? `*${identifier}` : identifier;
    const names = [
      ...request.dnsNames
        .filter((name) => !owned.has(name))
        .map((name) => ({
          name,
          subject: subject(dcvIdentifier('dns', name), name.startsWith('*.')),
        })),
      ...request.ipAddresses.map((name) => ({
        name,
        subject: subject(dcvIdentifier('ip', name), false),
      })),
    ];
    if (names.length === 0) return new Set();
    const corroborating = new Map<string, Map<string, Uint8Array>>(
      names.map(({ subject: key }) => [key, new Map<string, Uint8Array>()]),
    );
    const oldest = height - config.dcvMaxAgeBlocks;
    for (const attestation of attestations) {
      const { body } = attestation;
      const validators = corroborating.get(subject(body.identifier, body.wildcard));
      if (
        validators === undefined ||
        !body.ok ||
        (body.wildcard && body.method !== 'dns-01') ||
        body.chainId !== chainId ||
        !bytesEqual(body.account, sender) ||
        body.height < oldest ||
        body.height > height
      ) {
        continue;
      }
      const validator = toHex(body.validator);
      if (validators.has(validator) || holderOf(issuers, body.validator) === undefined) continue;
      if (dcvSignatureValid(attestation)) validators.set(validator, body.validator);
    }
    const electorate = readDcvElectorate(config, raw);
    for (const { name, subject: key } of names) {
      const validators = corroborating.get(key) as Map<string, Uint8Array>;
      const quorum = dcvQuorum(electorate, [...validators.values()]);
      if (!quorum.reached) {
        refuse(
          C.DCV_QUORUM,
          `multi-perspective validation of ${name}: ${dcvQuorumShortfall(quorum, issuers.length)}`,
          {
            name,
            corroborated: quorum.corroborating,
            corroboratedPower: quorum.corroboratedPower,
            totalPower: quorum.totalPower,
            holders: issuers.length,
          },
        );
      }
    }
    return new Set(request.dnsNames.filter((name) => !owned.has(name)));
  }

  /**
   * A genesis bootstrap certificate's renewal (docs/ca.md, "Renewing a genesis certificate"):
   * published and not revoked; sent by the genesis entry's account or the certificate's own
   * Ed25519 key; its `req` re-issues exactly the certificate (genesis-renewal.ts). The issuance
   * is on the genesis entry's account, with a requester allowed exactly the certificate's names.
   */
  function genesisRenewal(
    state: CaStateReader,
    tx: CaRenewTx,
    sender: Uint8Array,
    genesisAccount: Uint8Array,
  ): { request: CertificateRequest; requester: CaRequester; notBefore: number; notAfter: number } {
    const record = state.certificate(tx.serial);
    if (record === null) {
      refuse(C.NOT_PUBLISHED, `certificate ${toHex(tx.serial)} is not published`);
    }
    if (state.revocation(tx.serial) !== null) {
      refuse(C.REVOKED, `certificate ${toHex(tx.serial)} is revoked`);
    }
    const certificate = parseCertificate(record.der);
    if (
      !bytesEqual(genesisAccount, sender) &&
      !isEd25519Spki(certificate.subjectPublicKeyInfo, sender)
    ) {
      refuse(
        C.NOT_AUTHORIZED,
        "a renewal needs the genesis entry's account or the certificate's own Ed25519 key",
      );
    }
    if (tx.request === undefined) {
      refuse(
        C.RENEWAL_MISMATCH,
        'a genesis bootstrap certificate has no committed request: its renewal carries one (req)',
        { field: 'request' },
      );
    }
    const carried = parseRequest(tx.request, falcon);
    const mismatch = genesisRenewalMismatch(carried, certificate);
    if (mismatch !== null) {
      refuse(C.RENEWAL_MISMATCH, mismatch.message, { field: mismatch.field });
    }
    const request = { ...carried, lifetimeSeconds: tx.lifetimeSeconds };
    return {
      request,
      requester: genesisRenewalRequester(genesisAccount, request),
      notBefore: certificate.notBefore.getTime(),
      notAfter: certificate.notAfter.getTime(),
    };
  }

  function checkIssuance(
    raw: ModuleStateReader,
    state: CaStateReader,
    dns: ClusterDnsReader | null,
    chainId: string,
    height: number,
    tx: Extract<CaTx, { op: 'request' }> | CaRenewTx,
    sender: Uint8Array,
  ): CheckedIssuance {
    const issuers = view.issuers(raw);
    let request: CertificateRequest;
    let requester: CaRequester;
    let renews: Uint8Array | null = null;
    let account = sender;
    let renewed: { notAfter: number; validatedAt: number } | null = null;
    const genesis = tx.op === 'renew' ? state.genesisCertificate(tx.serial) : null;
    if (tx.op === 'request') {
      request = parseRequest(tx.request, falcon);
      requester = requesterFor(config, account, issuers);
    } else if (genesis !== null) {
      const renewal = genesisRenewal(state, tx, sender, genesis.account);
      ({ request, requester } = renewal);
      renewed = { notAfter: renewal.notAfter, validatedAt: renewal.notBefore };
      renews = tx.serial;
      account = genesis.account;
    } else {
      const record = publishedIssuance(state, tx.serial);
      const original = parseRequest(record.request, falcon);
      requester = requesterFor(config, record.account, issuers);
      // The requesting account, or the key the certificate certifies (proof of possession: the
      // sender signed this transaction with it). Either way the renewal is the original
      // account's: its grant, rate window and record, and the original CSR's names. Under a
      // `requireDcv` grant (an ACME server's account, shared by all its customers) only the
      // account itself: a customer's key must not spend the shared rate window.
      if (!bytesEqual(record.account, sender)) {
        if (requester.requireDcv) {
          refuse(
            C.NOT_AUTHORIZED,
            "a renewal under a requireDcv grant needs the requesting account, not the certificate's key",
          );
        }
        if (!isEd25519Spki(original.csr.subjectPublicKeyInfo, sender)) {
          refuse(
            C.NOT_AUTHORIZED,
            "a renewal needs the requesting account or the certificate's own Ed25519 key",
          );
        }
      }
      if (tx.request !== undefined) {
        refuse(
          C.RENEWAL_MISMATCH,
          'a renewal of a consensus-issued certificate re-issues its committed request: it carries none',
          { field: 'request' },
        );
      }
      request = { ...original, lifetimeSeconds: tx.lifetimeSeconds };
      renews = tx.serial;
      account = record.account;
      const published = state.certificate(tx.serial);
      if (published === null)
        throw new RangeError('publishedIssuance passed an unpublished serial');
      const certificate = parseCertificate(published.der);
      renewed = {
        notAfter: certificate.notAfter.getTime(),
        validatedAt: record.validatedAt ?? certificate.notBefore.getTime(),
      };
    }
    const keyHash = subjectKeyHash(request.csr.subjectPublicKeyInfo);
    refuseCompromisedKey(raw, keyHash);
    // Names the account owns in the `dns` module, exactly (docs/ca.md, "Who may request what").
    const owned = new Set(
      dns === null ? [] : request.dnsNames.filter((name) => dns.owns(name, account)),
    );
    const lifetimeSeconds = checkPolicy(request, requester, owned);
    if (tx.op === 'renew' && requester.requireDcv) refuseUncheckedCaaRenewal(request, owned);
    // A renewal re-issues names whose original request carried the quorum (docs/ca.md, MPIC).
    const corroborated =
      tx.op === 'request'
        ? checkDcv(raw, chainId, height, issuers, request, tx.dcv ?? [], sender, requester, owned)
        : new Set<string>();
    // The rate limit first: two reads, where CAA reads the `dns` zones name by name and ancestor
    // by ancestor. Either refusal writes nothing; the order only picks the code of a request
    // refused for both (docs/ca.md).
    checkRateLimit(state, account);
    if (dns !== null) checkCaa(dns, request, corroborated);
    checkCapacity(state, height);
    const needsDcv =
      requester.requireDcv &&
      (request.ipAddresses.length > 0 || request.dnsNames.some((name) => !owned.has(name)));
    return {
      request,
      lifetimeSeconds,
      renews,
      account,
      renewal: renewed === null ? null : { ...renewed, needsDcv },
      keyHash,
    };
  }

  /**
   * A `requireDcv` account's renewal carries no attestations, so nobody would check CAA
   * (RFC 8659 §3) for its DNS names now — `checkCaa` reads only the `dns` module's zones, and the
   * holders' checks were for the original request. A DNS name it does not own is therefore not
   * re-issued: the account requests anew with fresh attestations. IP addresses have no CAA and
   * keep the 398-day reuse (`checkRenewalTime`).
   */
  function refuseUncheckedCaaRenewal(request: CertificateRequest, owned: ReadonlySet<string>) {
    const name = request.dnsNames.find((dnsName) => !owned.has(dnsName));
    if (name === undefined) return;
    refuse(
      C.DCV_STALE,
      `renewing ${name} would skip its CAA check: request a new certificate with fresh DCV`,
      { name },
    );
  }

  /** Refuses a subject key a keyCompromise revocation marked (compromised-keys.ts). */
  function refuseCompromisedKey(raw: ModuleStateReader, keyHash: Uint8Array): void {
    const compromised = readCompromisedKey(raw, keyHash);
    if (compromised === null) return;
    refuse(
      C.KEY_COMPROMISED,
      `the subject key is compromised: certificate ${toHex(compromised.serial)} was revoked for keyCompromise; use a new key`,
      { keyHash: toHex(keyHash), revokedSerial: toHex(compromised.serial) },
    );
  }

  /**
   * A renewal at the block's time (docs/ca.md, "Renewal"): the certificate renewed has not
   * expired, and names that need DCV were validated at most `DCV_REUSE_MAX_MS` ago (else the
   * account requests anew, with fresh attestations).
   */
  function checkRenewalTime(renewal: RenewalTimes, serial: Uint8Array, time: number): void {
    if (renewal.notAfter <= time) {
      refuse(C.EXPIRED, `certificate ${toHex(serial)} expired: request a new one`, {
        notAfter: new Date(renewal.notAfter).toISOString(),
      });
    }
    if (renewal.needsDcv && time - renewal.validatedAt > DCV_REUSE_MAX_MS) {
      refuse(
        C.DCV_STALE,
        `the names of ${toHex(serial)} were validated more than 398 days ago: request anew with fresh DCV`,
        {
          validatedAt: new Date(renewal.validatedAt).toISOString(),
          reusableUntil: new Date(renewal.validatedAt + DCV_REUSE_MAX_MS).toISOString(),
        },
      );
    }
  }

  function checkRevoke(
    chainId: string,
    state: CaStateReader,
    tx: CaRevokeTx,
    sender: Uint8Array,
  ): { subjectKey: () => Uint8Array; keySigned: boolean } {
    const authority = revocationAuthority(state, tx.serial);
    if (REVOCATION_REASONS[tx.reason] === undefined) {
      refuse(C.BAD_REASON, `revocation reason ${tx.reason} is not accepted`, { reason: tx.reason });
    }
    const keySigned =
      tx.proof !== null &&
      subjectKeySigned(
        authority.subjectKey(),
        revocationMessage(chainId, tx.serial, tx.reason),
        tx.proof,
      );
    if (tx.proof !== null && !keySigned) {
      refuse(
        C.NOT_AUTHORIZED,
        "the revocation's proof is not a signature by the certificate's key",
      );
    }
    if (!keySigned && !bytesEqual(authority.account, sender)) {
      refuse(
        C.NOT_AUTHORIZED,
        "a revocation needs the requesting account or a signature by the certificate's key",
      );
    }
    return { subjectKey: authority.subjectKey, keySigned };
  }

  function checkPublish(
    raw: ModuleStateReader,
    state: CaStateReader,
    height: number,
    txHash: Uint8Array,
    tx: CaPublishTx,
    sender: Uint8Array,
  ): { issuer: CaIssuer; certificates: Uint8Array[] } {
    const issuers = view.issuers(raw);
    const batch = state.pending().includes(tx.height) ? state.batch(tx.height) : null;
    if (batch === null || batch.first === null) {
      refuse(C.NOT_PENDING, `no certificates of block ${tx.height} are waiting for publication`);
    }
    const issuer = issuers.find((candidate) => candidate.name === tx.issuer);
    if (issuer === undefined || !bytesEqual(issuer.account, sender)) {
      refuse(C.NOT_ISSUER, `the sender is not the account of issuer "${tx.issuer}"`);
    }
    const turn = eligibleIssuers(config, tx.height, batch.first, height, issuers);
    if (!turn.includes(issuer)) {
      refuse(
        C.NOT_ISSUER,
        `issuer ${issuer.name} may not publish block ${tx.height} at height ${height}`,
        { eligible: turn.map((candidate) => candidate.name) },
      );
    }
    const key = `${toHex(txHash)}/${issuer.name}`;
    let certificates = publications.get(key);
    if (certificates === undefined) {
      certificates = verifyPublication(config, state, tx, issuer, falcon);
      publications.set(key, certificates);
    }
    return { issuer, certificates };
  }

  function check(ctx: CheckContext, tx: CaTx, sender: Uint8Array): void {
    const state = new CaStateReader(ctx.state, records);
    switch (tx.op) {
      case 'request':
      case 'renew':
        checkedIssuances.set(
          tx,
          checkIssuance(ctx.state, state, clusterDnsOf(ctx), ctx.chainId, ctx.height, tx, sender),
        );
        return;
      case 'revoke':
        checkRevoke(ctx.chainId, state, tx, sender);
        return;
      case 'publish':
        verified.set(
          tx,
          checkPublish(ctx.state, state, ctx.height, ctx.txHash, tx, sender).certificates,
        );
        return;
      case 'add-intermediate':
        checkAddIntermediate(ctx.state, ctx.height, tx);
        return;
      case 'approve-intermediate':
        checkApproval(ctx.state, ctx.height, tx, sender);
    }
  }

  function applyIssuance(
    ctx: ExecutionContext,
    state: CaStateReader,
    checked: CheckedIssuance,
  ): void {
    if (checked.renewal !== null && checked.renews !== null) {
      checkRenewalTime(checked.renewal, checked.renews, ctx.time);
    }
    refuseCompromisedKey(ctx.state, checked.keyHash);
    const { notBefore, notAfter } = validityOf({
      blockTime: ctx.time,
      lifetimeSeconds: checked.lifetimeSeconds,
    });
    const window = view.issuableWindow(ctx.state);
    if (notBefore.getTime() < window.from || notAfter.getTime() > window.until) {
      refuse(
        C.OUTSIDE_ISSUER_VALIDITY,
        "the certificate would not lie within every intermediate's validity",
        {
          notBefore: notBefore.toISOString(),
          notAfter: notAfter.toISOString(),
          issuableUntil: new Date(window.until).toISOString(),
        },
      );
    }
    const decision = rateLimitStep(state.rateWindow(checked.account), ctx.time, config.rateLimit);
    if (!decision.allowed) {
      refuse(
        C.RATE_LIMITED,
        `issuance rate limit reached; retry in ${decision.retryAfterSeconds} s`,
        {
          retryAfterSeconds: decision.retryAfterSeconds,
          retryAt: decision.window.start + config.rateLimit.windowSeconds,
          max: config.rateLimit.max,
        },
      );
    }
    const serial = certificateSerial(ctx.chainId, ctx.height, ctx.txHash);
    const keyCertificates = keyIndexAfterIssuance(ctx, state, checked, {
      serial,
      notAfter: notAfter.getTime(),
    });
    const record: IssuanceRecord = {
      account: checked.account.slice(),
      request: encodeCertificateRequest(checked.request),
      height: ctx.height,
      lifetimeSeconds: checked.lifetimeSeconds,
      serial,
      renews: checked.renews,
      validatedAt: checked.renewal?.validatedAt ?? ctx.time,
    };
    const batch = state.batch(ctx.height);
    ctx.state.set(keyCertificatesKey(checked.keyHash), encodeKeyCertificates(keyCertificates));
    ctx.state.set(
      rateKey(checked.account),
      records.encodeRateWindow(toHex(checked.account), decision.window),
    );
    ctx.state.set(requestKey(ctx.txHash), records.encodeIssuance(toHex(ctx.txHash), record));
    ctx.state.set(serialKey(serial), ctx.txHash.slice());
    ctx.state.set(
      batchKey(ctx.height),
      records.encodeBatch(ctx.height, {
        time: ctx.time,
        first: null,
        items: [...(batch?.items ?? []), ctx.txHash.slice()],
      }),
    );
  }

  /**
   * The subject key's certificate index with `issued` added (compromised-keys.ts): a renewal
   * also adds the certificate it renews when it is not listed (a genesis bootstrap certificate),
   * so a keyCompromise revocation reaches it. The index keeps the latest
   * `MAX_CERTIFICATES_PER_KEY` unexpired, unrevoked certificates of the key.
   */
  function keyIndexAfterIssuance(
    ctx: ExecutionContext,
    state: CaStateReader,
    checked: CheckedIssuance,
    issued: KeyCertificate,
  ): KeyCertificate[] {
    let entries = readKeyCertificates(ctx.state, checked.keyHash);
    const renews = checked.renews;
    if (
      renews !== null &&
      checked.renewal !== null &&
      !entries.some((entry) => bytesEqual(entry.serial, renews))
    ) {
      entries = [...entries, { serial: renews.slice(), notAfter: checked.renewal.notAfter }];
    }
    return withKeyCertificate(
      entries,
      issued,
      ctx.time,
      (serial) => state.revocation(serial) !== null,
    );
  }

  /**
   * keyCompromise (CA/B Forum BR §4.9.1.1): marks the subject key and revokes, in this
   * transaction, the key's other listed certificates that are published and unrevoked. One not
   * published yet gets its revocation record now and joins its issuer's revoked list when it is
   * published (`applyPublish`).
   */
  function applyKeyCompromise(
    ctx: ExecutionContext,
    state: CaStateReader,
    serial: Uint8Array,
    spki: Uint8Array,
  ): void {
    const keyHash = subjectKeyHash(spki);
    if (readCompromisedKey(ctx.state, keyHash) === null) {
      ctx.state.set(
        compromisedKeyKey(keyHash),
        encodeCompromisedKey({ serial: serial.slice(), height: ctx.height, time: ctx.time }),
      );
    }
    for (const entry of readKeyCertificates(ctx.state, keyHash)) {
      if (bytesEqual(entry.serial, serial) || state.revocation(entry.serial) !== null) continue;
      ctx.state.set(
        revocationKey(entry.serial),
        encodeRevocation({ reason: KEY_COMPROMISE, height: ctx.height, time: ctx.time }),
      );
      if (state.certificate(entry.serial) !== null) {
        revokeFromIssuerList(ctx.state, state, entry.serial);
      }
    }
  }

  function applyPublish(
    ctx: ExecutionContext,
    state: CaStateReader,
    tx: CaPublishTx,
    sender: Uint8Array,
  ): void {
    const certificates =
      verified.get(tx) ??
      checkPublish(ctx.state, state, ctx.height, ctx.txHash, tx, sender).certificates;
    const batch = state.batch(tx.height);
    if (batch === null) throw new RangeError(`batch ${tx.height} vanished between check and apply`);
    const serials = batch.items.map((txHash, index) => {
      const record = state.issuance(txHash);
      if (record === null) throw new RangeError(`batch ${tx.height} names a missing issuance`);
      ctx.state.set(
        certificateKey(record.serial),
        encodeCertificateRecord({
          der: certificates[index] as Uint8Array,
          txHash,
          issuer: tx.issuer,
          publishedAt: ctx.height,
        }),
      );
      // Revoked before it was published (its key's keyCompromise, `applyKeyCompromise`): it
      // joins its issuer's revoked list now that the issuer is known.
      if (state.revocation(record.serial) !== null) {
        revokeFromIssuerList(ctx.state, state, record.serial);
      }
      return record.serial;
    });
    const earlier = state.published(ctx.height);
    // The log leaves, in the order ca-node.ts appends them: `pub/<height>`'s serials.
    ctx.state.set(
      TREE_HEAD_KEY,
      encodeTreeHead(appendCertificates(state.treeHead(), certificates, ctx.height, ctx.time)),
    );
    ctx.state.set(
      publishedKey(ctx.height),
      encodePublished({ time: ctx.time, serials: [...(earlier?.serials ?? []), ...serials] }),
    );
    ctx.state.delete(batchKey(tx.height));
    writePending(
      ctx.state,
      state.pending().filter((height) => height !== tx.height),
    );
  }

  /**
   * Adds the serial to its intermediate's revoked list (what that validator's CRL lists): the
   * last page of the list and its count, so the cost does not grow with the list.
   */
  function revokeFromIssuerList(
    writer: ModuleState,
    state: CaStateReader,
    serial: Uint8Array,
  ): void {
    const certificate = state.certificate(serial);
    if (certificate === null)
      throw new RangeError('revoke of an unpublished certificate passed check');
    for (const { key, value } of appendRevoked(state, certificate.issuer, serial)) {
      writer.set(key, value);
    }
  }

  /**
   * `add-intermediate` (docs/ca.md, "Adding a validator's intermediate"): the name, the node key
   * and the certificate have no intermediate and no open proposal, there is room for one more
   * proposal, and the certificate is an intermediate of this cluster's root with the profile the
   * ceremony gives and a root FALCON endorsement that covers `tx.account`
   * (`checkValidatorIntermediate`). Anyone may submit it (the operator does): the endorsement,
   * made offline with the root keys, is what binds the intermediate to the node key.
   */
  function checkAddIntermediate(
    state: ModuleStateReader,
    height: number,
    tx: CaAddIntermediateTx,
  ): void {
    const issuers = view.issuers(state);
    if (issuers.some((issuer) => issuer.name === tx.name)) {
      refuse(C.INTERMEDIATE_EXISTS, `validator ${tx.name} already has an intermediate`);
    }
    const holder = holderOf(issuers, tx.account);
    if (holder !== undefined) {
      refuse(
        C.INTERMEDIATE_EXISTS,
        `node key ${toHex(tx.account)} holds ${holder.name}'s intermediate`,
      );
    }
    const hash = proposalHash(tx.certificate, tx.account);
    const reader = new IntermediateStateReader(state);
    const stored = reader.proposal(hash);
    if (reader.abandoned(hash) || (stored !== null && stored.expiresAt < height)) {
      refuse(
        C.PROPOSAL_EXPIRED,
        `this intermediate of ${tx.name} was proposed before and expired unapproved: issue a new one`,
        { hash: toHex(hash) },
      );
    }
    const open = openProposals(state, height);
    for (const { hash: other, proposal } of open) {
      if (
        bytesEqual(other, hash) ||
        proposal.name === tx.name ||
        bytesEqual(proposal.certificate, tx.certificate) ||
        bytesEqual(proposal.account, tx.account)
      ) {
        refuse(
          C.DUPLICATE_PROPOSAL,
          `an intermediate for ${proposal.name} is already proposed (${toHex(other)})`,
          { hash: toHex(other) },
        );
      }
    }
    if (open.length >= MAX_INTERMEDIATE_PROPOSALS) {
      refuse(C.TOO_MANY_PROPOSALS, `${MAX_INTERMEDIATE_PROPOSALS} intermediate proposals are open`);
    }
    try {
      checkValidatorIntermediate(
        view.bundle(state),
        {
          name: tx.name,
          certificate: tx.certificate,
          endorsement: tx.endorsement,
          account: tx.account,
        },
        falcon,
      );
    } catch (error) {
      if (error instanceof CaError) {
        refuse(C.INTERMEDIATE_INVALID, error.message, { reason: error.code, ...error.detail });
      }
      throw error;
    }
  }

  /**
   * Refuses an intermediate with less than `MIN_INTERMEDIATE_REMAINING_MS` left at `time` (the
   * block's time): the issuable window would end at its notAfter (consensus rule, docs/ca.md).
   */
  function refuseShortIntermediate(name: string, notAfter: Date, time: number): void {
    if (notAfter.getTime() - time >= MIN_INTERMEDIATE_REMAINING_MS) return;
    refuse(
      C.INTERMEDIATE_INVALID,
      `the intermediate of ${name} has less than ${MIN_INTERMEDIATE_REMAINING_MS / 86_400_000} days of validity left`,
      {
        reason: 'short_validity',
        notAfter: notAfter.toISOString(),
        minimumRemainingDays: MIN_INTERMEDIATE_REMAINING_MS / 86_400_000,
      },
    );
  }

  /** Proposals still accepting approvals at `height`, in proposal order. */
  function openProposals(
    state: ModuleStateReader,
    height: number,
  ): { hash: Uint8Array; proposal: IntermediateProposal }[] {
    const reader = new IntermediateStateReader(state);
    return reader.proposalHashes().flatMap((hash) => {
      const proposal = reader.proposal(hash);
      return proposal !== null && proposal.expiresAt >= height ? [{ hash, proposal }] : [];
    });
  }

  function applyAddIntermediate(ctx: ExecutionContext, tx: CaAddIntermediateTx): void {
    checkAddIntermediate(ctx.state, ctx.height, tx);
    const issuer = parseIssuerOf(tx.certificate);
    // An intermediate not valid yet would move every issuer's window; an expired one is useless.
    if (issuer.notBefore.getTime() > ctx.time || issuer.notAfter.getTime() <= ctx.time) {
      refuse(
        C.INTERMEDIATE_INVALID,
        `the intermediate of ${tx.name} is not valid at this block's time`,
        {
          reason: 'outside_validity',
          notBefore: issuer.notBefore.toISOString(),
          notAfter: issuer.notAfter.toISOString(),
        },
      );
    }
    refuseShortIntermediate(tx.name, issuer.notAfter, ctx.time);
    const reader = new IntermediateStateReader(ctx.state);
    const open = openProposals(ctx.state, ctx.height);
    // Expired proposals are dropped here, so they never count against the limit for long.
    for (const hash of reader.proposalHashes()) {
      if (!open.some((entry) => bytesEqual(entry.hash, hash))) {
        ctx.state.delete(proposalKey(hash));
        ctx.state.set(abandonedProposalKey(hash), new Uint8Array([1]));
      }
    }
    const hash = proposalHash(tx.certificate, tx.account);
    ctx.state.set(
      proposalKey(hash),
      encodeProposal({
        name: tx.name,
        account: tx.account.slice(),
        certificate: tx.certificate.slice(),
        endorsement: tx.endorsement.slice(),
        height: ctx.height,
        expiresAt: ctx.height + config.intermediateProposalBlocks,
        approvals: [],
      }),
    );
    ctx.state.set(PROPOSALS_KEY, encodeHashList([...open.map((entry) => entry.hash), hash]));
  }

  /**
   * `approve-intermediate`: an open proposal, approved by a current intermediate holder (its
   * genesis or added node key) that has not approved it yet, for a name and key that still have
   * no intermediate.
   */
  function checkApproval(
    state: ModuleStateReader,
    height: number,
    tx: CaApproveIntermediateTx,
    sender: Uint8Array,
  ): { proposal: IntermediateProposal; approver: CaIssuer; holders: number } {
    const proposal = new IntermediateStateReader(state).proposal(tx.hash);
    if (proposal === null) {
      refuse(C.UNKNOWN_PROPOSAL, `no intermediate proposal ${toHex(tx.hash)}`);
    }
    if (height > proposal.expiresAt) {
      refuse(
        C.PROPOSAL_EXPIRED,
        `the proposal of ${proposal.name}'s intermediate expired at height ${proposal.expiresAt}`,
        { expiresAt: proposal.expiresAt },
      );
    }
    const issuers = view.issuers(state);
    const approver = holderOf(issuers, sender);
    if (approver === undefined) {
      refuse(C.NOT_APPROVER, 'only an intermediate holder (its node key) may approve');
    }
    if (proposal.approvals.includes(approver.name)) {
      refuse(C.DUPLICATE_APPROVAL, `${approver.name} has approved this proposal already`);
    }
    if (
      issuers.some((issuer) => issuer.name === proposal.name) ||
      holderOf(issuers, proposal.account) !== undefined
    ) {
      refuse(C.INTERMEDIATE_EXISTS, `${proposal.name} (or its node key) has an intermediate now`);
    }
    return { proposal, approver, holders: issuers.length };
  }

  function applyApproval(
    ctx: ExecutionContext,
    tx: CaApproveIntermediateTx,
    sender: Uint8Array,
  ): void {
    const { proposal, approver, holders } = checkApproval(ctx.state, ctx.height, tx, sender);
    // Re-checked at every approval: an intermediate that ran short while its proposal was open
    // must not take effect (the proposal then expires).
    refuseShortIntermediate(proposal.name, parseIssuerOf(proposal.certificate).notAfter, ctx.time);
    const approvals = [...proposal.approvals, approver.name];
    if (!approvalQuorumReached(approvals.length, holders)) {
      ctx.state.set(proposalKey(tx.hash), encodeProposal({ ...proposal, approvals }));
      return;
    }
    const reader = new IntermediateStateReader(ctx.state);
    ctx.state.set(
      addedIntermediateKey(proposal.name),
      encodeAddedIntermediate({
        name: proposal.name,
        account: proposal.account,
        certificate: proposal.certificate,
        endorsement: proposal.endorsement,
        proposedAt: proposal.height,
        activatedAt: ctx.height,
        approvals,
      }),
    );
    ctx.state.set(ADDED_INTERMEDIATES_KEY, encodeNameList([...reader.addedNames(), proposal.name]));
    ctx.state.delete(proposalKey(tx.hash));
    const rest = reader.proposalHashes().filter((hash) => !bytesEqual(hash, tx.hash));
    if (rest.length === 0) ctx.state.delete(PROPOSALS_KEY);
    else ctx.state.set(PROPOSALS_KEY, encodeHashList(rest));
  }

  function writePending(state: ModuleState, heights: readonly number[]): void {
    if (heights.length === 0) state.delete(PENDING_KEY);
    else state.set(PENDING_KEY, records.encodePending(heights));
  }

  return {
    name: CA_MODULE_NAME,
    ...(config.clusterDns === null ? {} : { reads: [CLUSTER_DNS_MODULE] }),
    decodeBody: decodeCaBody,
    check,
    apply(ctx: ExecutionContext, tx: CaTx, sender: Uint8Array): void {
      const state = new CaStateReader(ctx.state, records);
      switch (tx.op) {
        case 'request':
        case 'renew':
          applyIssuance(
            ctx,
            state,
            checkedIssuances.get(tx) ??
              checkIssuance(
                ctx.state,
                state,
                clusterDnsOf(ctx),
                ctx.chainId,
                ctx.height,
                tx,
                sender,
              ),
          );
          return;
        case 'revoke': {
          const authority = checkRevoke(ctx.chainId, state, tx, sender);
          ctx.state.set(
            revocationKey(tx.serial),
            encodeRevocation({ reason: tx.reason, height: ctx.height, time: ctx.time }),
          );
          revokeFromIssuerList(ctx.state, state, tx.serial);
          // Only the key's holder can show the key compromised: anyone may get a certificate
          // for another's key (a CSR is public once requested), so the requesting account alone
          // revokes its own certificate and nothing more.
          if (tx.reason === KEY_COMPROMISE && authority.keySigned) {
            applyKeyCompromise(ctx, state, tx.serial, authority.subjectKey());
          }
          return;
        }
        case 'publish':
          applyPublish(ctx, state, tx, sender);
          return;
        case 'add-intermediate':
          applyAddIntermediate(ctx, tx);
          return;
        case 'approve-intermediate':
          applyApproval(ctx, tx, sender);
      }
    },
    endBlock(ctx: EndBlockContext): readonly ValidatorUpdate[] {
      const state = new CaStateReader(ctx.state, records);
      const batch = state.batch(ctx.height);
      if (batch !== null && batch.first === null) {
        ctx.state.set(
          batchKey(ctx.height),
          records.encodeBatch(ctx.height, {
            ...batch,
            first: firstIssuerIndex(config, ctx.height, ctx.proposer, view.issuers(ctx.state)),
          }),
        );
        writePending(ctx.state, [...state.pending(), ctx.height]);
      }
      // What `check` reads without a block time or a validator set of its own.
      const windowStart = rateWindowStart(ctx.time, config.rateLimit);
      if (state.rateWindowStart() !== windowStart) {
        ctx.state.set(RATE_WINDOW_KEY, encodeRateWindowStart(windowStart));
      }
      const powers = votingPowersUpdate(ctx.state, ctx.lastCommit);
      if (powers !== null) ctx.state.set(VOTING_POWERS_KEY, powers);
      return [];
    },
    query(path: string, data: Uint8Array): ModuleQueryAnswer | undefined {
      const sized = (length: number): Uint8Array => {
        if (data.length !== length) {
          refuse(C.INVALID_QUERY, `ca/${path} takes ${length} bytes of data, got ${data.length}`);
        }
        return data;
      };
      const height = (): number => {
        const value = new DataView(sized(8).buffer, data.byteOffset, 8).getBigUint64(0);
        if (value < 1n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
          refuse(C.INVALID_QUERY, `ca/${path}: height out of range`);
        }
        return Number(value);
      };
      /** A validator name (never containing `/`, so no other key of `revoked/` is reached). */
      const validatorName = (name: Uint8Array): string => {
        const text = new TextDecoder().decode(name);
        if (!isValidatorName(text)) {
          refuse(
            C.INVALID_QUERY,
            `ca/${path} takes a validator name (1 to 64 of A-Z a-z 0-9 . _ -)`,
          );
        }
        return text;
      };
      switch (path) {
        case CA_QUERIES.request:
          return { key: requestKey(sized(32)) };
        case CA_QUERIES.serial:
          return { key: serialKey(sized(16)) };
        case CA_QUERIES.certificate:
          return { key: certificateKey(sized(16)) };
        case CA_QUERIES.revocation:
          return { key: revocationKey(sized(16)) };
        case CA_QUERIES.genesisCertificate:
          return { key: genesisCertificateKey(sized(16)) };
        case CA_QUERIES.pending:
          sized(0);
          return { key: PENDING_KEY };
        case CA_QUERIES.batch:
          return { key: batchKey(height()) };
        case CA_QUERIES.published:
          return { key: publishedKey(height()) };
        case CA_QUERIES.treeHead:
          sized(0);
          return { key: TREE_HEAD_KEY };
        case CA_QUERIES.revoked:
          return { key: revokedCountKey(validatorName(data)) };
        case CA_QUERIES.revokedPage: {
          if (data.length < 9) {
            refuse(C.INVALID_QUERY, 'ca/revoked-page takes an 8-byte page number and a name');
          }
          const page = new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0);
          if (page > BigInt(Number.MAX_SAFE_INTEGER)) {
            refuse(C.INVALID_QUERY, 'ca/revoked-page: page out of range');
          }
          return { key: revokedPageKey(validatorName(data.subarray(8)), Number(page)) };
        }
        case CA_QUERIES.intermediateProposals:
          sized(0);
          return { key: PROPOSALS_KEY };
        case CA_QUERIES.intermediateProposal:
          return { key: proposalKey(sized(32)) };
        case CA_QUERIES.addedIntermediates:
          sized(0);
          return { key: ADDED_INTERMEDIATES_KEY };
        case CA_QUERIES.addedIntermediate:
          if (data.length < 1 || data.length > 64) {
            refuse(C.INVALID_QUERY, 'ca/intermediate takes a validator name of 1 to 64 bytes');
          }
          return { key: addedIntermediateKey(new TextDecoder().decode(data)) };
        default:
          return undefined;
      }
    },
  };
}
