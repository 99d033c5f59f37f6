import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import {
  fingerprint as certificateFingerprint,
  parseCertificate,
  pemToDer,
  pemToDerList,
  X509Error,
  type ParsedCertificate,
} from '../../crypto/x509.js';
import { CaError } from '../../trustchain/ca/errors.js';
import { MAX_CSR_BYTES, parseCsr, type ParsedCsr } from '../../trustchain/ca/csr.js';
import {
  checkOrderIdentifiers,
  identifierKeys,
  type AuthorizationTarget,
  type ChallengeType,
  type IdentifierPolicy,
} from './identifiers.js';
import { AcmeIssuerError, AcmeIssuerErrorCode, type AcmeIssuer } from './issuer.js';
import {
  decodeBase64Url,
  jsonPayload,
  jwkThumbprint,
  keyObjectJwk,
  parseJwk,
  parseJws,
  parsePayload,
  verifyJwsSignature,
  type ParsedJws,
} from './jws.js';
import type { NonceStore } from './nonces.js';
import { accountRefused, authenticate, type Authenticated, type KeyMode } from './authenticate.js';
import { caaOrderProblem, checkCaa, type CaaPolicy } from './caa-check.js';
import { DeadlineExpired, beforeDeadline, startDeadline, type Deadline } from './deadline.js';
import {
  checkCsrIdentifiers,
  checkCsrKeyIsNotAccountKey,
  issuanceProblem,
} from './finalize-checks.js';
import {
  ALLOWED_REVOCATION_REASONS,
  accountUpdatePayload,
  authorizationUpdatePayload,
  challengeResponsePayload,
  checkContacts,
  finalizePayload,
  keyChangeInnerPayload,
  newAccountPayload,
  newOrderPayload,
  revokePayload,
} from './payloads.js';
import {
  ProblemType,
  malformed,
  problem,
  type AcmeIdentifier,
  AcmeProblem,
  type ProblemDocument,
} from './problems.js';
import { accountObject, authorizationObject, challengeObject, orderObject } from './resources.js';
import {
  authorityKeyIdentifier,
  parseCertId,
  renewalInfoObject,
  retryAfterSeconds,
  suggestedWindow,
  type CertId,
} from './renewal-info.js';
import type { AcmeUrls, Route } from './routes.js';
import type {
  AccountRecord,
  AcmeStore,
  AuthorizationRecord,
  CertificateRecord,
  ChallengeRecord,
  OrderRecord,
} from './store.js';
import { keyAuthorization, validateChallenge, type ValidationOptions } from './validation.js';
import { ValidationQueue } from './validation-queue.js';
import { NewAccountLimit } from './account-limit.js';
import type { AcmeCorroborate, AcmeMpicOutcome } from './mpic.js';
import { bytesEqual, toHex } from '../../crypto/bytes.js';
import { dcvQuorum, dcvQuorumShortfall } from '../../trustchain/ca-module/dcv.js';

/**
 * How long before a validation's deadline the multi-perspective collector stops waiting for
 * holders (at most a tenth of the time left), so the answers it holds are counted.
 */
const COLLECTOR_MARGIN_MS = 500;

/**
 * The ACME state machine (RFC 8555 §7): request authentication (§6.2–§6.5), accounts (§7.3),
 * orders and their authorizations (§7.4, §7.5), challenge validation (§8), finalization and
 * certificate download (§7.4.2), revocation (§7.6), and renewal information with `replaces`
 * (RFC 9773). Requests arrive as (route, body, URL) from the HTTP face (server.ts); everything
 * here is independent of sockets except the validations and the issuer it calls. Validation
 * and issuance run in the background; each state change they make emits `change` on `events`.
 */

export interface AcmeServiceOptions {
  readonly store: AcmeStore;
  readonly issuer: AcmeIssuer;
  readonly urls: AcmeUrls;
  readonly nonces: NonceStore;
  readonly validation: ValidationOptions;
  readonly identifiers: IdentifierPolicy;
  readonly termsOfService?: string;
  readonly website?: string;
  readonly caaIdentities?: readonly string[];
  /**
   * CAA checking (RFC 8659), with `caaIdentities` as the issuer domain names: when a challenge
   * has validated (before its authorization becomes valid) and again at finalize. Absent: no
   * CAA check.
   */
  readonly caa?: CaaPolicy;
  /**
   * Multi-perspective validation (mpic.ts): after a challenge validates here, validators
   * holding more than 2/3 of the voting power must corroborate it (`dcvQuorum`, the `ca`
   * module's rule). Absent: local validation only.
   */
  readonly corroborate?: AcmeCorroborate;
  /** Counts each corroboration's outcome (metrics). */
  readonly onCorroboration?: (outcome: AcmeMpicOutcome) => void;
  readonly orderLifetimeMs: number;
  readonly pendingAuthorizationLifetimeMs: number;
  readonly validAuthorizationLifetimeMs: number;
  /**
   * Challenge validations running at once, over all accounts (default
   * `DEFAULT_MAX_VALIDATIONS`) and for one account (default `DEFAULT_MAX_VALIDATIONS_PER_ACCOUNT`).
   * Each holds an outbound connection or DNS lookup for up to the validation timeout; the
   * challenges over a cap stay `processing` and wait their turn (validation-queue.ts).
   */
  readonly maxValidations?: number;
  readonly maxValidationsPerAccount?: number;
  /**
   * Validations one account may have waiting for a slot (default
   * `DEFAULT_MAX_QUEUED_VALIDATIONS_PER_ACCOUNT`); a challenge response over it is refused with
   * `rateLimited` (429) and the challenge stays `pending`. Waiting accounts take the free slots
   * in turn, so one account's backlog delays another's validation by at most one round.
   */
  readonly maxQueuedValidationsPerAccount?: number;
  /**
   * Pending, unexpired authorizations one account may hold (default
   * `DEFAULT_MAX_PENDING_AUTHORIZATIONS_PER_ACCOUNT`); a newOrder that would go over it is
   * refused with `rateLimited` (429) and nothing is stored.
   */
  readonly maxPendingAuthorizationsPerAccount?: number;
  /**
   * Accounts one client address (an IPv4 address, an IPv6 /64) may create per
   * `newAccountWindowMs` (defaults `DEFAULT_MAX_NEW_ACCOUNTS_PER_ADDRESS` per
   * `DEFAULT_NEW_ACCOUNT_WINDOW_MS`); more is `rateLimited` (429). Counted only for requests
   * that come with an address (account-limit.ts).
   */
  readonly maxNewAccountsPerAddress?: number;
  readonly newAccountWindowMs?: number;
  readonly now: () => number;
  readonly events: EventEmitter;
  /** Background failures the server cannot report to a client (never thrown). */
  readonly onBackgroundError: (error: unknown) => void;
}

export interface Reply {
  readonly status: number;
  readonly json?: unknown;
  readonly text?: string;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Default caps on validations in flight, over all accounts and per account. */
export const DEFAULT_MAX_VALIDATIONS = 32;
export const DEFAULT_MAX_VALIDATIONS_PER_ACCOUNT = 8;
/** Default validations one account may have waiting: one full order (`MAX_ORDER_IDENTIFIERS`). */
export const DEFAULT_MAX_QUEUED_VALIDATIONS_PER_ACCOUNT = 100;
/** Default limit on one account's pending authorizations (Let's Encrypt's is 1,000). */
export const DEFAULT_MAX_PENDING_AUTHORIZATIONS_PER_ACCOUNT = 300;

/** Default new accounts per client address and window (Let's Encrypt: 10 per 3 hours). */
export const DEFAULT_MAX_NEW_ACCOUNTS_PER_ADDRESS = 10;
export const DEFAULT_NEW_ACCOUNT_WINDOW_MS = 3 * 3_600_000;
/** Client addresses whose new-account window is kept in memory at most. */
const MAX_TRACKED_ADDRESSES = 100_000;

/**
 * Order URLs per page of an account's `orders` list (RFC 8555 §7.1.2.1), newest first; a
 * `Link: rel="next"` leads to the older ones.
 */
export const MAX_LISTED_ORDERS = 1_000;
/** Authorizations whose CAA finalize re-checks at once (each climbs its name's ancestors). */
export const MAX_PARALLEL_CAA_CHECKS = 8;
/** Seconds a client is asked to wait before polling a processing object again. */
const RETRY_AFTER_SECONDS = '1';

const FAILED_AUTHZ: ReadonlySet<string> = new Set(['invalid', 'deactivated', 'expired', 'revoked']);

/** The problem for work refused (or undone) because the account is no longer valid (§7.3.6). */
function accountNotValid(status: string, what: string): AcmeProblem {
  return problem(ProblemType.unauthorized, `${what}: the account is ${status}`);
}

function newId(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * An issuer that follows an issuance past its own wait (the node's `ConsensusAcmeIssuer`,
 * src/node/acme-issuer.ts): when an order left `processing` after that wait ran out can be
 * finished (its CA transaction committed, refused or gone), it calls the listener, and the
 * service runs the order's issuance again with no client poll needed.
 */
export interface ResumingAcmeIssuer extends AcmeIssuer {
  onResumable(listener: (orderId: string) => void): void;
}

function isResumingIssuer(issuer: AcmeIssuer): issuer is ResumingAcmeIssuer {
  return typeof (issuer as Partial<ResumingAcmeIssuer>).onResumable === 'function';
}

const json = (status: number, body: unknown, headers?: Record<string, string>): Reply => ({
  status,
  json: body,
  ...(headers === undefined ? {} : { headers }),
});

export class AcmeService {
  private readonly tasks = new Set<Promise<void>>();
  private readonly validations: ValidationQueue;
  private readonly maxPendingAuthorizations: number;
  private readonly newAccounts: NewAccountLimit;
  private readonly issuing = new Set<string>();
  /** Orders the issuer handed back (`onResumable`) while their issuance was still ending. */
  private readonly issueAgain = new Set<string>();
  private stopped = false;

  constructor(private readonly options: AcmeServiceOptions) {
    this.validations = new ValidationQueue({
      maxInFlight: options.maxValidations ?? DEFAULT_MAX_VALIDATIONS,
      maxInFlightPerAccount:
        options.maxValidationsPerAccount ?? DEFAULT_MAX_VALIDATIONS_PER_ACCOUNT,
      maxQueuedPerAccount:
        options.maxQueuedValidationsPerAccount ?? DEFAULT_MAX_QUEUED_VALIDATIONS_PER_ACCOUNT,
    });
    this.maxPendingAuthorizations =
      options.maxPendingAuthorizationsPerAccount ?? DEFAULT_MAX_PENDING_AUTHORIZATIONS_PER_ACCOUNT;
    if (!Number.isSafeInteger(this.maxPendingAuthorizations) || this.maxPendingAuthorizations < 1) {
      throw new RangeError('maxPendingAuthorizationsPerAccount must be a positive integer');
    }
    this.newAccounts = new NewAccountLimit({
      maxPerWindow: options.maxNewAccountsPerAddress ?? DEFAULT_MAX_NEW_ACCOUNTS_PER_ADDRESS,
      windowMs: options.newAccountWindowMs ?? DEFAULT_NEW_ACCOUNT_WINDOW_MS,
      maxTrackedAddresses: MAX_TRACKED_ADDRESSES,
    });
    if (isResumingIssuer(options.issuer)) {
      options.issuer.onResumable((orderId) => {
        if (this.stopped) return;
        // An issuance of the order still ending (it failed a moment ago) runs again after it.
        if (this.issuing.has(orderId)) this.issueAgain.add(orderId);
        else this.startIssuance(orderId);
      });
    }
  }

  private get store(): AcmeStore {
    return this.options.store;
  }
  private get urls(): AcmeUrls {
    return this.options.urls;
  }
  private now(): number {
    return this.options.now();
  }

  directory(): Reply {
    const { urls, termsOfService, website, caaIdentities } = this.options;
    return json(200, {
      newNonce: urls.newNonce,
      newAccount: urls.newAccount,
      newOrder: urls.newOrder,
      revokeCert: urls.revokeCert,
      keyChange: urls.keyChange,
      renewalInfo: urls.renewalInfo,
      meta: {
        ...(termsOfService === undefined ? {} : { termsOfService }),
        ...(website === undefined ? {} : { website }),
        ...(caaIdentities === undefined ? {} : { caaIdentities }),
        externalAccountRequired: false,
      },
    });
  }

  /**
   * RFC 9773 §4.2: the suggested renewal window of a certificate this server issued, for an
   * unauthenticated GET. A malformed certID is `malformed` (400); one that names no certificate
   * of this server (unknown serial, or a keyIdentifier other than its issuer's) is 404.
   */
  renewalInfo(certIdText: string): Reply {
    const { record, parsed } = this.issuedCertificate(parseCertId(certIdText), 404);
    const revoked =
      record.revokedMs !== null || this.options.issuer.isRevoked?.(record.serialHex) === true;
    const window = suggestedWindow(parsed, revoked, this.now());
    return json(200, renewalInfoObject(window), {
      'Retry-After': String(retryAfterSeconds(window)),
    });
  }

  /**
   * The certificate a certID names among those this server issued (its own store, which is
   * also what certificate downloads are served from), else `malformed` with `status`.
   */
  private issuedCertificate(
    certId: CertId,
    status: number,
  ): { record: CertificateRecord; parsed: ParsedCertificate } {
    const record = this.store.certificateBySerial(certId.serialHex);
    if (record === undefined) {
      throw malformed('this server issued no certificate with that serial', { status });
    }
    const parsed = parseCertificate(record.leafDer);
    const keyId = authorityKeyIdentifier(parsed);
    if (keyId === null || !bytesEqual(keyId, certId.keyIdentifier)) {
      throw malformed("the certID's keyIdentifier is not that of the certificate's issuer", {
        status,
      });
    }
    return { record, parsed };
  }

  /**
   * Restarts validations and issuances that were running (or waiting) when the server last
   * stopped. The validations queue oldest first, under the same caps on running ones as new
   * ones; they were admitted under the cap on waiting ones before, so it does not refuse them.
   */
  resume(): void {
    for (const { id, accountId } of this.store.challengesInStatus('processing')) {
      this.validations.enqueue(id, accountId, true);
    }
    this.startValidations();
    for (const id of this.store.orderIdsInStatus('processing')) this.startIssuance(id);
  }

  /**
   * Starts no more validations. Waiting ones are dropped from memory and stay `processing` in
   * the store, so the next `resume()` queues them again; running ones finish (see `idle`).
   */
  stop(): void {
    this.stopped = true;
    this.validations.dropWaiting();
  }

  /** Validations running and waiting for a slot (for metrics). */
  validationLoad(): { readonly inFlight: number; readonly queued: number } {
    return { inFlight: this.validations.inFlight, queued: this.validations.queued };
  }

  /** Resolves once no validation or issuance is running. */
  async idle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  /** A POST; `clientAddress` is the peer's IP address when known (for the new-account limit). */
  async post(route: Route, body: string, url: string, clientAddress?: string): Promise<Reply> {
    switch (route.kind) {
      case 'newAccount':
        return this.newAccount(body, url, clientAddress);
      case 'account':
        return this.account(route.id, body, url);
      case 'accountOrders':
        return this.accountOrders(route.id, body, url, route.cursor);
      case 'keyChange':
        return this.keyChange(body, url);
      case 'newOrder':
        return this.newOrder(body, url);
      case 'order':
        return this.order(route.id, body, url);
      case 'authorization':
        return this.authorization(route.id, body, url);
      case 'challenge':
        return this.challenge(route.id, body, url);
      case 'finalize':
        return this.finalize(route.id, body, url);
      case 'certificate':
        return this.certificate(route.id, body, url);
      case 'revokeCert':
        return this.revokeCert(body, url);
      default:
        throw malformed('this resource does not accept POST', { status: 405 });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Authentication (RFC 8555 §6.2–§6.5)

  private authenticate(body: string, url: string, mode: KeyMode): Authenticated {
    return authenticate(this.options, body, url, mode);
  }

  private accountOf(auth: Authenticated): AccountRecord {
    return auth.account as AccountRecord;
  }

  private isPostAsGet(jws: ParsedJws): boolean {
    return jws.payload.length === 0;
  }

  // -------------------------------------------------------------------------------------------
  // Accounts (§7.3)

  private newAccount(body: string, url: string, clientAddress: string | undefined): Reply {
    const auth = this.authenticate(body, url, 'jwk');
    const payload = parsePayload(newAccountPayload, jsonPayload(auth.jws), 'newAccount payload');
    const existing = this.store.accountByThumbprint(auth.key.thumbprint);
    if (existing !== undefined) {
      if (existing.status !== 'valid') throw accountRefused(existing.status);
      return json(200, accountObject(existing, this.urls), {
        Location: this.urls.account(existing.id),
      });
    }
    if (payload.onlyReturnExisting === true) {
      throw problem(ProblemType.accountDoesNotExist, 'no account exists with this key');
    }
    if (this.options.termsOfService !== undefined && payload.termsOfServiceAgreed !== true) {
      throw malformed(`the terms of service (${this.options.termsOfService}) must be agreed to`);
    }
    const contact = payload.contact ?? [];
    checkContacts(contact);
    const now = this.now();
    if (clientAddress !== undefined) this.checkNewAccountLimit(clientAddress, now);
    const account: AccountRecord = {
      id: newId(),
      jwk: auth.key.jwk,
      thumbprint: auth.key.thumbprint,
      status: 'valid',
      contact,
      termsOfServiceAgreed: payload.termsOfServiceAgreed === true,
      createdMs: now,
    };
    this.store.insertAccount(account);
    if (clientAddress !== undefined) this.newAccounts.record(clientAddress, now);
    return json(201, accountObject(account, this.urls), {
      Location: this.urls.account(account.id),
    });
  }

  /** Let's Encrypt's new-registrations-per-IP limit: `rateLimited` with Retry-After when reached. */
  private checkNewAccountLimit(clientAddress: string, now: number): void {
    const decision = this.newAccounts.check(clientAddress, now);
    if (decision.allowed) return;
    const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    const max = this.options.maxNewAccountsPerAddress ?? DEFAULT_MAX_NEW_ACCOUNTS_PER_ADDRESS;
    const windowS = Math.ceil(
      (this.options.newAccountWindowMs ?? DEFAULT_NEW_ACCOUNT_WINDOW_MS) / 1000,
    );
    throw problem(
      ProblemType.rateLimited,
      `${decision.key} has created ${max} accounts in the last ${windowS} s, the most one address may; retry after ${seconds} s`,
      { headers: { 'Retry-After': String(seconds) } },
    );
  }

  private ownAccount(auth: Authenticated, id: string): AccountRecord {
    const account = this.accountOf(auth);
    if (account.id !== id) throw problem(ProblemType.unauthorized, 'this is not your account');
    return account;
  }

  private account(id: string, body: string, url: string): Reply {
    const auth = this.authenticate(body, url, 'kid');
    const account = this.ownAccount(auth, id);
    if (this.isPostAsGet(auth.jws)) return json(200, accountObject(account, this.urls));
    const payload = parsePayload(accountUpdatePayload, jsonPayload(auth.jws), 'account update');
    if (payload.contact !== undefined) checkContacts(payload.contact);
    this.store.transaction(() => {
      this.store.updateAccount(id, {
        ...(payload.contact === undefined ? {} : { contact: payload.contact }),
        ...(payload.status === undefined ? {} : { status: payload.status }),
      });
      if (payload.status === 'deactivated') this.cancelPendingWork(id);
    });
    return json(200, accountObject(this.store.accountById(id) as AccountRecord, this.urls));
  }

  /**
   * RFC 8555 §7.3.6: the server cancels the pending operations of a deactivated account. Its
   * pending authorizations become `deactivated` (§7.1.6); a challenge of theirs still
   * `processing` becomes `invalid`, so a validation running now records nothing when it ends
   * (pending challenges stay `pending`: their authorization no longer takes responses); its
   * pending and ready orders become `invalid`. A `processing` order is left to `issue`, which
   * refuses an account that is not valid before it asks the CA.
   */
  private cancelPendingWork(accountId: string): void {
    const error = accountNotValid('deactivated', 'cancelled').asDocument();
    for (const authorizationId of this.store.authorizationIdsOfAccount(accountId, 'pending')) {
      for (const challenge of this.store.challengesOfAuthorization(authorizationId)) {
        if (challenge.status === 'processing') {
          this.store.updateChallenge(challenge.id, { status: 'invalid', error });
        }
      }
      this.store.setAuthorizationStatus(authorizationId, 'deactivated');
    }
    for (const status of ['pending', 'ready'] as const) {
      for (const orderId of this.store.orderIdsOfAccountInStatus(accountId, status)) {
        this.store.updateOrder(orderId, { status: 'invalid', error });
      }
    }
  }

  /**
   * §7.1.2.1: the account's orders, newest first, `MAX_LISTED_ORDERS` per page; the next page's
   * URL carries the last listed order as its cursor.
   */
  private accountOrders(id: string, body: string, url: string, cursor?: string): Reply {
    const auth = this.authenticate(body, url, 'kid');
    this.ownAccount(auth, id);
    if (!this.isPostAsGet(auth.jws)) throw malformed('the orders list only answers POST-as-GET');
    const page = this.store.orderPageOfAccount(id, MAX_LISTED_ORDERS, cursor);
    if (page === undefined) throw malformed('the cursor names no order of this account');
    const last = page.ids.at(-1);
    const next =
      page.more && last !== undefined
        ? { Link: `<${this.urls.accountOrders(id, last)}>;rel="next"` }
        : undefined;
    return json(200, { orders: page.ids.map((orderId) => this.urls.order(orderId)) }, next);
  }

  /** §7.3.5: the outer JWS is signed by the old key, the inner one by the new key. */
  private keyChange(body: string, url: string): Reply {
    const auth = this.authenticate(body, url, 'kid');
    const account = this.accountOf(auth);
    const inner = parseJws(auth.jws.payload.toString('utf8'));
    if (inner.header.jwk === undefined)
      throw malformed('the inner JWS must carry the new key (jwk)');
    if (inner.header.nonce !== undefined) throw malformed('the inner JWS must not have a nonce');
    if (inner.header.url !== url) throw malformed('the inner JWS url differs from the outer one');
    const newKey = parseJwk(inner.header.jwk);
    verifyJwsSignature(inner, newKey);
    const payload = parsePayload(keyChangeInnerPayload, jsonPayload(inner), 'keyChange payload');
    if (payload.account !== this.urls.account(account.id)) {
      throw malformed('the inner payload names another account');
    }
    const oldKey = parseJwk(payload.oldKey);
    if (oldKey.thumbprint !== account.thumbprint) {
      throw malformed("oldKey is not the account's current key");
    }
    const holder = this.store.accountByThumbprint(newKey.thumbprint);
    if (holder !== undefined) {
      throw malformed('the new key is already in use by an account', {
        status: 409,
        headers: { Location: this.urls.account(holder.id) },
      });
    }
    this.store.transaction(() =>
      this.store.changeAccountKey(account.id, newKey.jwk, newKey.thumbprint),
    );
    return json(200, accountObject(this.store.accountById(account.id) as AccountRecord, this.urls));
  }

  // -------------------------------------------------------------------------------------------
  // Orders and authorizations (§7.4, §7.5)

  private newOrder(body: string, url: string): Reply {
    const auth = this.authenticate(body, url, 'kid');
    const account = this.accountOf(auth);
    const payload = parsePayload(newOrderPayload, jsonPayload(auth.jws), 'newOrder payload');
    if (payload.notBefore !== undefined || payload.notAfter !== undefined) {
      throw malformed('notBefore and notAfter are not supported; the CA decides the validity');
    }
    const unsupported = payload.identifiers.find((i) => i.type !== 'dns' && i.type !== 'ip');
    if (unsupported !== undefined) {
      throw problem(
        ProblemType.unsupportedIdentifier,
        `identifier type ${JSON.stringify(unsupported.type)} is not supported (dns, ip)`,
      );
    }
    const identifiers = payload.identifiers as AcmeIdentifier[];
    const targets = checkOrderIdentifiers(identifiers, this.options.identifiers);
    const replaces =
      payload.replaces === undefined
        ? undefined
        : this.checkReplaces(payload.replaces, account, identifiers);
    const now = this.now();
    const orderId = newId();
    const authzExpires = now + this.options.pendingAuthorizationLifetimeMs;
    const { validation } = this.options;
    // dns-01 needs a TXT resolver: the cluster's for its names, the external one for others.
    const offered = (target: AuthorizationTarget): ChallengeType[] =>
      target.challenges.filter(
        (type) =>
          type !== 'dns-01' ||
          (target.identifier.type === 'dns' &&
          validation.external?.isExternal(target.identifier.value) === true
            ? true
            : validation.txtResolver !== undefined),
      );
    const authorizations = targets.map((target, position) => {
      const types = offered(target);
      if (types.length === 0) {
        throw problem(
          ProblemType.rejectedIdentifier,
          `no challenge type this server offers can validate ${target.identifier.value}${target.wildcard ? ' (wildcard: dns-01 only)' : ''}`,
          { identifier: target.identifier },
        );
      }
      const authorization: AuthorizationRecord = {
        id: newId(),
        accountId: account.id,
        orderId,
        position,
        identifier: target.identifier,
        wildcard: target.wildcard,
        status: 'pending',
        expiresMs: authzExpires,
      };
      const challenges: ChallengeRecord[] = types.map((type) => ({
        id: newId(),
        authorizationId: authorization.id,
        type,
        token: randomBytes(32).toString('base64url'),
        status: 'pending',
        validatedMs: null,
        error: null,
      }));
      return { authorization, challenges };
    });
    const order = {
      id: orderId,
      accountId: account.id,
      status: 'pending' as const,
      expiresMs: Math.min(now + this.options.orderLifetimeMs, authzExpires),
      identifiers,
      createdMs: now,
      ...(replaces === undefined ? {} : { replaces }),
    };
    this.checkPendingAuthorizations(account.id, authorizations.length, now);
    this.store.insertOrder({ order, authorizations });
    const stored = this.store.orderById(orderId) as OrderRecord;
    return json(
      201,
      orderObject(
        stored,
        authorizations.map((a) => a.authorization.id),
        this.urls,
      ),
      { Location: this.urls.order(orderId) },
    );
  }

  /**
   * The pending-authorization limit (Boulder's; Let's Encrypt allows 1,000 per account): an
   * order whose authorizations would take the account over it is refused with `rateLimited`
   * (RFC 8555 §6.6) before anything is stored, with a Retry-After for when enough of the
   * account's pending authorizations will have expired. Validating or deactivating (§7.5.2)
   * them frees room sooner.
   */
  private checkPendingAuthorizations(accountId: string, adding: number, now: number): void {
    const limit = this.maxPendingAuthorizations;
    if (adding > limit) {
      throw problem(
        ProblemType.rateLimited,
        `an order for ${adding} identifiers needs ${adding} pending authorizations; an account may hold at most ${limit}`,
      );
    }
    const pending = this.store.pendingAuthorizationCount(accountId, now);
    const excess = pending + adding - limit;
    if (excess <= 0) return;
    // excess <= pending (adding <= limit), so the account has that many to expire.
    const expiry = this.store.pendingAuthorizationExpiry(accountId, now, excess) ?? now;
    const seconds = Math.max(1, Math.ceil((expiry - now) / 1000));
    throw problem(
      ProblemType.rateLimited,
      `the account has ${pending} pending authorizations and this order would add ${adding}, over the limit of ${limit} per account; validate or deactivate pending authorizations, or retry after ${seconds} s when enough have expired`,
      { headers: { 'Retry-After': String(seconds) } },
    );
  }

  /**
   * RFC 9773 §5: `replaces` must name a certificate this server issued to the same account,
   * sharing at least one identifier with the new order (`malformed` / `unauthorized`), that no
   * other order which is not `invalid` replaces already (409 `alreadyReplaced`).
   */
  private checkReplaces(
    certIdText: string,
    account: AccountRecord,
    identifiers: readonly AcmeIdentifier[],
  ): string {
    const { record, parsed } = this.issuedCertificate(parseCertId(certIdText), 400);
    if (record.accountId !== account.id) {
      throw problem(
        ProblemType.unauthorized,
        'the certificate named by replaces was issued to another account',
      );
    }
    const named = new Set(
      identifierKeys([
        ...parsed.dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...parsed.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
    );
    if (!identifierKeys(identifiers).some((key) => named.has(key))) {
      throw malformed('the order shares no identifier with the certificate it replaces');
    }
    // An expired pending order no longer counts: refreshOrder makes it invalid first.
    const replacing = this.store
      .liveOrdersReplacing(certIdText)
      .map((other) => this.refreshOrder(other))
      .find((other) => other.status !== 'invalid');
    if (replacing !== undefined) {
      throw problem(
        ProblemType.alreadyReplaced,
        `order ${this.urls.order(replacing.id)} already replaces this certificate`,
      );
    }
    return certIdText;
  }

  private ownOrder(auth: Authenticated, id: string): OrderRecord {
    const order = this.store.orderById(id);
    if (order === undefined) throw malformed('no such order', { status: 404 });
    if (order.accountId !== this.accountOf(auth).id) {
      throw problem(ProblemType.unauthorized, 'this order belongs to another account');
    }
    return this.refreshOrder(order);
  }

  private orderReply(
    order: OrderRecord,
    status = 200,
    headers: Record<string, string> = {},
  ): Reply {
    const ids = this.store.authorizationsOfOrder(order.id).map((a) => a.id);
    const retry: Record<string, string> =
      order.status === 'processing' ? { 'Retry-After': RETRY_AFTER_SECONDS } : {};
    return json(status, orderObject(order, ids, this.urls), { ...retry, ...headers });
  }

  private order(id: string, body: string, url: string): Reply {
    const auth = this.authenticate(body, url, 'kid');
    if (!this.isPostAsGet(auth.jws)) throw malformed('an order only answers POST-as-GET');
    const order = this.ownOrder(auth, id);
    // A processing order no issuance is working on (the issuer's wait ran out while the CA
    // transaction was still pending): this poll looks for its certificate again.
    if (order.status === 'processing' && !this.stopped) this.startIssuance(order.id);
    return this.orderReply(order);
  }

  /** Expires a pending or valid authorization whose time has passed (§7.1.6). */
  private refreshAuthorization(authorization: AuthorizationRecord): AuthorizationRecord {
    if (
      (authorization.status === 'pending' || authorization.status === 'valid') &&
      this.now() >= authorization.expiresMs
    ) {
      this.store.setAuthorizationStatus(authorization.id, 'expired');
      return { ...authorization, status: 'expired' };
    }
    return authorization;
  }

  /** §7.1.6: pending → ready when every authorization is valid; invalid on any failure or expiry. */
  private refreshOrder(order: OrderRecord): OrderRecord {
    if (order.status !== 'pending' && order.status !== 'ready') return order;
    const authorizations = this.store
      .authorizationsOfOrder(order.id)
      .map((a) => this.refreshAuthorization(a));
    let next: OrderRecord['status'] = order.status;
    let error: ProblemDocument | null = null;
    const failed = authorizations.find((a) => FAILED_AUTHZ.has(a.status));
    if (this.now() >= order.expiresMs) {
      next = 'invalid';
      error = malformed('the order expired').asDocument();
    } else if (failed !== undefined) {
      next = 'invalid';
      error = problem(
        ProblemType.unauthorized,
        `the authorization for ${failed.identifier.value} is ${failed.status}`,
        { identifier: failed.identifier },
      ).asDocument();
    } else if (order.status === 'pending' && authorizations.every((a) => a.status === 'valid')) {
      next = 'ready';
    }
    if (next === order.status) return order;
    this.store.updateOrder(order.id, { status: next, ...(error === null ? {} : { error }) });
    return this.store.orderById(order.id) as OrderRecord;
  }

  private ownAuthorization(auth: Authenticated, id: string): AuthorizationRecord {
    const authorization = this.store.authorizationById(id);
    if (authorization === undefined) throw malformed('no such authorization', { status: 404 });
    if (authorization.accountId !== this.accountOf(auth).id) {
      throw problem(ProblemType.unauthorized, 'this authorization belongs to another account');
    }
    return this.refreshAuthorization(authorization);
  }

  private authorizationReply(authorization: AuthorizationRecord): Reply {
    const challenges = this.store.challengesOfAuthorization(authorization.id);
    const processing = challenges.some((challenge) => challenge.status === 'processing');
    return json(
      200,
      authorizationObject(authorization, challenges, this.urls),
      processing ? { 'Retry-After': RETRY_AFTER_SECONDS } : {},
    );
  }

  private authorization(id: string, body: string, url: string): Reply {
    const auth = this.authenticate(body, url, 'kid');
    const authorization = this.ownAuthorization(auth, id);
    if (this.isPostAsGet(auth.jws)) return this.authorizationReply(authorization);
    parsePayload(authorizationUpdatePayload, jsonPayload(auth.jws), 'authorization update');
    // §7.5.2: a pending or valid authorization may be deactivated by its account.
    if (authorization.status !== 'pending' && authorization.status !== 'valid') {
      throw malformed(`an authorization that is ${authorization.status} cannot be deactivated`);
    }
    this.store.setAuthorizationStatus(id, 'deactivated');
    return this.authorizationReply(this.store.authorizationById(id) as AuthorizationRecord);
  }

  // -------------------------------------------------------------------------------------------
  // Challenges (§7.5.1, §8)

  private challenge(id: string, body: string, url: string): Reply {
    const auth = this.authenticate(body, url, 'kid');
    const challenge = this.store.challengeById(id);
    if (challenge === undefined) throw malformed('no such challenge', { status: 404 });
    const authorization = this.ownAuthorization(auth, challenge.authorizationId);
    const up = { Link: `<${this.urls.authorization(authorization.id)}>;rel="up"` };
    if (this.isPostAsGet(auth.jws)) return json(200, challengeObject(challenge, this.urls), up);
    parsePayload(challengeResponsePayload, jsonPayload(auth.jws), 'challenge response');
    if (authorization.status !== 'pending') {
      throw malformed(`the authorization is ${authorization.status}, not pending`);
    }
    // RFC 8555 §7.5.1: the client responds to one of the offered challenges, and the server
    // finalizes the authorization when it has completed one validation. One validation of an
    // authorization runs at a time: a response to another of its challenges while one is
    // processing starts nothing, and is answered with that challenge as it is (still pending).
    const validating = this.store
      .challengesOfAuthorization(authorization.id)
      .some((other) => other.id !== id && other.status === 'processing');
    if (challenge.status === 'pending' && !validating) {
      const queued = this.validations.enqueue(id, authorization.accountId);
      if (queued === 'full') throw this.validationQueueFull(authorization.accountId);
      this.store.updateChallenge(id, { status: 'processing' });
      if (queued === 'queued') this.startValidations();
    }
    const current = this.store.challengeById(id) as ChallengeRecord;
    // Clients poll the authorization after this; lego waits Retry-After (else 5 s) between polls.
    const retry: Record<string, string> =
      current.status === 'processing' ? { 'Retry-After': RETRY_AFTER_SECONDS } : {};
    return json(200, challengeObject(current, this.urls), { ...up, ...retry });
  }

  /** The account has as many validations waiting as it may: `rateLimited` (RFC 8555 §6.6). */
  private validationQueueFull(accountId: string): AcmeProblem {
    const seconds = Math.max(1, Math.ceil(this.options.validation.timeoutMs / 1000));
    return problem(
      ProblemType.rateLimited,
      `the account has ${this.validations.queuedOf(accountId)} challenge validations waiting, the most one account may; retry after ${seconds} s`,
      { headers: { 'Retry-After': String(seconds) } },
    );
  }

  private track(task: Promise<void>): void {
    const tracked = task.catch((error: unknown) => this.options.onBackgroundError(error));
    this.tasks.add(tracked);
    void tracked.finally(() => {
      this.tasks.delete(tracked);
      this.options.events.emit('change');
    });
  }

  /**
   * Starts the waiting validations the caps allow (validation-queue.ts). Each one, when it
   * ends, frees its slot and starts the next before its task leaves `tasks`, so `idle()` also
   * waits for those still queued.
   */
  private startValidations(): void {
    if (this.stopped) return;
    for (const { challengeId } of this.validations.takeStartable()) {
      this.track(
        this.validate(challengeId).finally(() => {
          this.validations.finish(challengeId);
          this.startValidations();
        }),
      );
    }
  }

  private async validate(challengeId: string): Promise<void> {
    const challenge = this.store.challengeById(challengeId);
    if (challenge === undefined || challenge.status !== 'processing') return;
    const authorization = this.store.authorizationById(challenge.authorizationId);
    if (authorization === undefined) return;
    const account = this.store.accountById(authorization.accountId);
    if (account === undefined) return;
    // RFC 8555 §7.3.6: nothing is done any more for a deactivated account (one resumed after a
    // restart, say): no connection, no lookup.
    if (account.status !== 'valid') {
      this.store.updateChallenge(challengeId, {
        status: 'invalid',
        error: accountNotValid(account.status, 'validation not attempted').asDocument(),
      });
      return;
    }
    // A validation that waited for a slot may find its authorization deactivated, expired or
    // decided by another challenge meanwhile: then it is not attempted (no connection).
    const authzState =
      authorization.status === 'pending' && this.now() >= authorization.expiresMs
        ? 'expired'
        : authorization.status;
    if (authzState !== 'pending') {
      this.store.updateChallenge(challengeId, {
        status: 'invalid',
        error: malformed(
          `validation not attempted: the authorization is ${authzState}`,
        ).asDocument(),
      });
      return;
    }
    const keyAuth = keyAuthorization(challenge.token, account.thumbprint);
    // One deadline over the whole validation — the check, the CAA climb and the corroboration
    // — so it holds its slot at most `timeoutMs` (docs/acme.md, "Limits").
    const deadline = startDeadline(this.options.validation.timeoutMs);
    let outcome = await validateChallenge(
      challenge.type,
      authorization.identifier,
      challenge.token,
      keyAuth,
      this.options.validation,
      deadline,
    );
    // RFC 8659 §3: the CA checks CAA before it issues; doing it here too (as Boulder does)
    // means an authorization the records forbid never becomes valid.
    if (outcome === null) {
      outcome = await this.caaRefusal(authorization, account.id, challenge.type, deadline);
    }
    let attestations: ReadonlyArray<{ validator: Uint8Array; bytes: Uint8Array }> = [];
    if (outcome === null && this.options.corroborate !== undefined) {
      const corroborated = await this.corroborate(
        this.options.corroborate,
        authorization,
        challenge,
        keyAuth,
        deadline,
      );
      if (corroborated instanceof AcmeProblem) outcome = corroborated;
      else attestations = corroborated;
    }
    const now = this.now();
    this.store.transaction(() => {
      const current = this.store.challengeById(challengeId);
      if (current === undefined || current.status !== 'processing') return;
      const authz = this.store.authorizationById(challenge.authorizationId);
      // The account may have been deactivated while the validation ran (§7.3.6).
      const owner = this.store.accountById(account.id);
      if (owner?.status !== 'valid') {
        outcome = accountNotValid(owner?.status ?? 'gone', 'validation discarded');
      }
      // §7.1.6: a pending authorization whose time passed while the validation ran is expired
      // (a poll meanwhile may have marked it so); it does not become valid, with a fresh
      // lifetime, for a check that ended too late.
      const expired =
        authz?.status === 'expired' || (authz?.status === 'pending' && now >= authz.expiresMs);
      if (outcome === null && expired) {
        outcome = malformed('validation discarded: the authorization expired while it ran');
      }
      if (outcome === null) {
        this.store.recordAttestations(challenge.authorizationId, attestations);
        this.store.updateChallenge(challengeId, { status: 'valid', validatedMs: now });
        if (authz?.status === 'pending') {
          this.store.setAuthorizationStatus(
            authz.id,
            'valid',
            now + this.options.validAuthorizationLifetimeMs,
          );
        }
      } else {
        this.store.updateChallenge(challengeId, { status: 'invalid', error: outcome.asDocument() });
        if (authz?.status === 'pending') {
          this.store.setAuthorizationStatus(authz.id, expired ? 'expired' : 'invalid');
        }
      }
    });
  }

  /**
   * Multi-perspective validation: the attestations (one per validator) when enough validators
   * corroborate the challenge, else the problem the challenge records.
   */
  private async corroborate(
    corroborate: AcmeCorroborate,
    authorization: AuthorizationRecord,
    challenge: ChallengeRecord,
    keyAuth: string,
    deadline: Deadline,
  ): Promise<Array<{ validator: Uint8Array; bytes: Uint8Array }> | AcmeProblem> {
    let answer;
    try {
      // Nothing is asked once the deadline has passed (the CAA check may have used it up).
      if (deadline.signal.aborted) throw new DeadlineExpired(deadline.ms);
      // The collector is given a little less than what is left, so its own timer ends first
      // and the attestations in hand count: given all of it, the deadline won the race about
      // as often as not, and one holder that never answers failed a challenge the others
      // had corroborated.
      const remaining = deadline.remainingMs();
      answer = await beforeDeadline(
        corroborate(authorization.identifier, challenge.type, challenge.token, keyAuth, {
          wildcard: authorization.wildcard,
          accountUri: this.urls.account(authorization.accountId),
          deadlineMs: Math.max(1, remaining - Math.min(COLLECTOR_MARGIN_MS, remaining / 10)),
        }),
        deadline,
      );
    } catch (error) {
      if (error instanceof DeadlineExpired) {
        this.options.onCorroboration?.('refused');
        return problem(
          ProblemType.incorrectResponse,
          `multi-perspective validation: the validators did not answer within the validation's ${error.ms} ms`,
          { identifier: authorization.identifier },
        );
      }
      this.options.onBackgroundError(error);
      this.options.onCorroboration?.('refused');
      return problem(
        ProblemType.incorrectResponse,
        `multi-perspective validation failed: ${(error as Error).message}`,
        { identifier: authorization.identifier },
      );
    }
    const distinct = new Map<string, { validator: Uint8Array; bytes: Uint8Array }>();
    for (const attestation of answer.attestations) {
      distinct.set(toHex(attestation.validator), {
        validator: attestation.validator,
        bytes: attestation.bytes,
      });
    }
    const quorum = dcvQuorum(
      answer.electorate,
      [...distinct.values()].map((attestation) => attestation.validator),
    );
    if (!quorum.reached) {
      this.options.onCorroboration?.('refused');
      return problem(
        ProblemType.incorrectResponse,
        `multi-perspective validation: ${dcvQuorumShortfall(quorum, answer.holders)}`,
        { identifier: authorization.identifier },
      );
    }
    this.options.onCorroboration?.('corroborated');
    return [...distinct.values()];
  }

  // -------------------------------------------------------------------------------------------
  // Finalization and certificates (§7.4, §7.4.2)

  private async finalize(id: string, body: string, url: string): Promise<Reply> {
    const auth = this.authenticate(body, url, 'kid');
    const order = this.ownOrder(auth, id);
    const payload = parsePayload(finalizePayload, jsonPayload(auth.jws), 'finalize payload');
    if (order.status !== 'ready') {
      throw problem(ProblemType.orderNotReady, `the order is ${order.status}, not ready`);
    }
    const csrDer = decodeBase64Url(payload.csr, 'csr');
    if (csrDer.length > MAX_CSR_BYTES) {
      throw problem(ProblemType.badCSR, `the CSR is larger than ${MAX_CSR_BYTES} bytes`);
    }
    let csr: ParsedCsr;
    try {
      csr = parseCsr(new Uint8Array(csrDer));
    } catch (error) {
      if (error instanceof CaError) throw problem(ProblemType.badCSR, error.message);
      throw error;
    }
    checkCsrIdentifiers(csr, order.identifiers);
    checkCsrKeyIsNotAccountKey(csr, auth.key.key);
    await this.checkOrderCaa(order);
    // The CAA lookups yielded: another finalize of this order may have gone ahead meanwhile,
    // the account may have been deactivated (§7.3.6), and an authorization deactivated
    // (§7.5.2) or expired (§7.1.6) — refreshOrder turns the order invalid for the last two.
    const owner = this.store.accountById(order.accountId);
    if (owner?.status !== 'valid') throw accountNotValid(owner?.status ?? 'gone', 'not finalized');
    const stored = this.store.orderById(order.id);
    const current = stored === undefined ? undefined : this.refreshOrder(stored);
    if (current?.status !== 'ready') {
      const why = current?.error?.detail;
      throw problem(
        ProblemType.orderNotReady,
        `the order is ${current?.status ?? 'gone'}, not ready${why === undefined ? '' : `: ${why}`}`,
      );
    }
    this.store.updateOrder(order.id, { status: 'processing', csr: csr.der });
    this.startIssuance(order.id);
    return this.orderReply(this.store.orderById(order.id) as OrderRecord);
  }

  /** The CAA problem for `authorization`, validated by `method`, or null when CAA allows it. */
  private async caaRefusal(
    authorization: AuthorizationRecord,
    accountId: string,
    method: ChallengeType | undefined,
    deadline: Deadline,
  ): Promise<AcmeProblem | null> {
    const policy = this.options.caa;
    if (policy === undefined) return null;
    return checkCaa(
      policy,
      {
        identifier: authorization.identifier,
        wildcard: authorization.wildcard,
        accountUri: this.urls.account(accountId),
        validationMethod: method,
      },
      deadline,
    );
  }

  /**
   * Finalize re-checks CAA for every authorization of the order (the records may have changed
   * since validation), with the method of the challenge that validated it:
   * `MAX_PARALLEL_CAA_CHECKS` authorizations at a time, all under one deadline of the
   * validation timeout (one not done by then is a `dns` refusal). A refusal leaves the order
   * `ready` and nothing is sent to the issuer.
   */
  private async checkOrderCaa(order: OrderRecord): Promise<void> {
    if (this.options.caa === undefined) return;
    const deadline = startDeadline(this.options.validation.timeoutMs);
    const authorizations = this.store.authorizationsOfOrder(order.id);
    const outcomes: Array<AcmeProblem | null> = authorizations.map(() => null);
    let next = 0;
    const checkInTurn = async (): Promise<void> => {
      for (let index = next++; index < authorizations.length; index = next++) {
        const authorization = authorizations[index] as AuthorizationRecord;
        const method = this.store
          .challengesOfAuthorization(authorization.id)
          .find((challenge) => challenge.status === 'valid')?.type;
        outcomes[index] = await this.caaRefusal(authorization, order.accountId, method, deadline);
      }
    };
    const workers = Math.min(MAX_PARALLEL_CAA_CHECKS, authorizations.length);
    await Promise.all(Array.from({ length: workers }, checkInTurn));
    const refusals = outcomes.filter((outcome): outcome is AcmeProblem => outcome !== null);
    if (refusals.length > 0) throw caaOrderProblem(refusals);
  }

  private startIssuance(orderId: string): void {
    if (this.issuing.has(orderId)) return;
    this.issuing.add(orderId);
    this.track(
      this.issue(orderId).finally(() => {
        this.issuing.delete(orderId);
        if (this.issueAgain.delete(orderId) && !this.stopped) this.startIssuance(orderId);
      }),
    );
  }

  private async issue(orderId: string): Promise<void> {
    const order = this.store.orderById(orderId);
    if (order === undefined || order.status !== 'processing' || order.csr === null) return;
    // §7.3.6: a deactivated account's order is not sent to the CA. One already submitted to
    // consensus (resumed after a restart) is followed to its end: the certificate exists
    // either way, and is better recorded than lost.
    const owner = this.store.accountById(order.accountId);
    if (owner?.status !== 'valid' && this.store.issuanceOf(orderId) === null) {
      this.store.updateOrder(orderId, {
        status: 'invalid',
        error: accountNotValid(owner?.status ?? 'gone', 'issuance not attempted').asDocument(),
      });
      return;
    }
    let stored: { leaf: Uint8Array; parsed: ParsedCertificate; chainPem: string };
    try {
      const issued = await this.options.issuer.issue({
        orderId,
        accountId: order.accountId,
        csrDer: order.csr,
        identifiers: order.identifiers,
        dcv: this.store
          .authorizationsOfOrder(orderId)
          .flatMap((authorization) => this.store.attestationsOfAuthorization(authorization.id)),
      });
      const leaf = pemToDer(issued.certificatePem);
      const chain = issued.chainPem.trim() === '' ? [] : pemToDerList(issued.chainPem);
      stored = {
        leaf,
        parsed: parseCertificate(leaf),
        chainPem: `${issued.certificatePem.trim()}\n${chain.length === 0 ? '' : `${issued.chainPem.trim()}\n`}`,
      };
    } catch (error) {
      // The consensus issuer keeps the order's issuance record only while its transaction may
      // still yield a certificate (pending in the mempool, or committed and not yet published):
      // the order then stays `processing`, and the next poll of it, `resume`, or the issuer's
      // `onResumable` once the transaction moved on waits for that transaction again instead
      // of failing an order whose certificate is being issued.
      if (
        error instanceof AcmeIssuerError &&
        error.code === AcmeIssuerErrorCode.UNAVAILABLE &&
        this.store.issuanceOf(orderId) !== null
      ) {
        return;
      }
      this.store.updateOrder(orderId, {
        status: 'invalid',
        error: issuanceProblem(error).asDocument(),
      });
      if (!(error instanceof AcmeIssuerError)) this.options.onBackgroundError(error);
      return;
    }
    this.store.transaction(() => {
      const current = this.store.orderById(orderId);
      if (current === undefined || current.status !== 'processing') return;
      const certificateId = newId();
      this.store.insertCertificate({
        id: certificateId,
        accountId: order.accountId,
        orderId,
        serialHex: stored.parsed.serialNumber,
        fingerprint: certificateFingerprint(stored.leaf),
        leafDer: stored.leaf,
        chainPem: stored.chainPem,
        revokedMs: null,
        revocationReason: null,
      });
      this.store.updateOrder(orderId, { status: 'valid', certificateId });
    });
  }

  private certificate(id: string, body: string, url: string): Reply {
    const auth = this.authenticate(body, url, 'kid');
    if (!this.isPostAsGet(auth.jws)) throw malformed('a certificate only answers POST-as-GET');
    const record = this.store.certificateById(id);
    if (record === undefined) throw malformed('no such certificate', { status: 404 });
    if (record.accountId !== this.accountOf(auth).id) {
      throw problem(ProblemType.unauthorized, 'this certificate belongs to another account');
    }
    return {
      status: 200,
      text: record.chainPem,
      contentType: 'application/pem-certificate-chain',
    };
  }

  // -------------------------------------------------------------------------------------------
  // Revocation (§7.6)

  private async revokeCert(body: string, url: string): Promise<Reply> {
    const auth = this.authenticate(body, url, 'either');
    const payload = parsePayload(revokePayload, jsonPayload(auth.jws), 'revokeCert payload');
    const der = new Uint8Array(decodeBase64Url(payload.certificate, 'certificate'));
    let parsed: ParsedCertificate;
    try {
      parsed = parseCertificate(der);
    } catch (error) {
      if (error instanceof X509Error)
        throw malformed(`the certificate does not parse: ${error.message}`);
      throw error;
    }
    const record = this.store.certificateByFingerprint(certificateFingerprint(der));
    if (record === undefined) {
      throw malformed('this server did not issue that certificate', { status: 404 });
    }
    if (auth.account === undefined) {
      // Signed with a jwk: it must be the certificate's own key.
      const certJwk = keyObjectJwk(parsed.publicKey);
      if (certJwk === null || jwkThumbprint(certJwk) !== auth.key.thumbprint) {
        throw problem(ProblemType.unauthorized, "the JWS key is not the certificate's key");
      }
    } else if (
      record.accountId !== auth.account.id &&
      !this.holdsAuthorizations(auth.account, parsed)
    ) {
      throw problem(
        ProblemType.unauthorized,
        'the account neither ordered this certificate nor holds authorizations for all its names',
      );
    }
    if (record.revokedMs !== null) {
      throw problem(ProblemType.alreadyRevoked, 'the certificate is already revoked');
    }
    // Revoked by another route (`hypermesh cert revoke`, a `ca/revoke` signed with the
    // certificate's key): the CA would refuse a second revocation, so none is sent. The server
    // records it, with reason 0 (unspecified) since the CA's reason is not this request's.
    if (this.options.issuer.isRevoked?.(record.serialHex) === true) {
      this.store.markRevoked(record.id, this.now(), 0);
      throw problem(ProblemType.alreadyRevoked, 'the certificate is already revoked');
    }
    const reason = payload.reason ?? 0;
    if (!ALLOWED_REVOCATION_REASONS.has(reason)) {
      throw problem(
        ProblemType.badRevocationReason,
        `revocation reason ${reason} is not allowed (allowed: ${[...ALLOWED_REVOCATION_REASONS].join(', ')})`,
      );
    }
    try {
      await this.options.issuer.revoke({ serialHex: record.serialHex, certDer: der, reason });
    } catch (error) {
      // Revoked meanwhile (a concurrent revokeCert, or another route the check above missed):
      // RFC 8555 §7.6 answers alreadyRevoked.
      if (error instanceof AcmeIssuerError && error.code === AcmeIssuerErrorCode.ALREADY_REVOKED) {
        this.store.markRevoked(record.id, this.now(), 0);
        throw problem(
          ProblemType.alreadyRevoked,
          `the certificate is already revoked: ${error.message}`,
        );
      }
      if (error instanceof AcmeIssuerError) {
        throw problem(ProblemType.serverInternal, `the CA could not revoke: ${error.message}`);
      }
      throw error;
    }
    this.store.markRevoked(record.id, this.now(), reason);
    return { status: 200, text: '', contentType: 'text/plain' };
  }

  /**
   * RFC 8555 §7.6: whether `account` holds valid authorizations for every identifier in the
   * certificate. A wildcard name `*.x` needs an authorization for the wildcard (`wildcard`, so
   * validated by dns-01, §7.1.3), as Boulder requires: one for `x` alone proves control of `x`,
   * not of every name below it.
   */
  private holdsAuthorizations(account: AccountRecord, certificate: ParsedCertificate): boolean {
    const names: Array<{ identifier: AcmeIdentifier; wildcard: boolean }> = [
      ...certificate.dnsNames.map((value) => ({
        identifier: { type: 'dns' as const, value: value.replace(/^\*\./, '') },
        wildcard: value.startsWith('*.'),
      })),
      ...certificate.ipAddresses.map((value) => ({
        identifier: { type: 'ip' as const, value },
        wildcard: false,
      })),
    ];
    const now = this.now();
    return (
      names.length > 0 &&
      names.every(({ identifier, wildcard }) =>
        this.store
          .validAuthorizationsFor(account.id, identifier, now)
          .some((authorization) => !wildcard || authorization.wildcard),
      )
    );
  }
}
