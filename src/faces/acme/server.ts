import { X509Certificate, createPrivateKey } from 'node:crypto';
import { EventEmitter } from 'node:events';
import https from 'node:https';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIPv6 } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import { HTTP01_PORT, TLS_ALPN01_PORT } from './challenge-ports.js';
import { AcmeError, AcmeErrorCode } from './errors.js';
import type { IdentifierPolicy } from './identifiers.js';
import type { AcmeIssuer } from './issuer.js';
import { NonceStore } from './nonces.js';
import { AcmeProblem, ProblemType, malformed, problem } from './problems.js';
import { AcmeUrls, routeOf, type Route } from './routes.js';
import {
  AcmeService,
  DEFAULT_MAX_NEW_ACCOUNTS_PER_ADDRESS,
  DEFAULT_MAX_PENDING_AUTHORIZATIONS_PER_ACCOUNT,
  DEFAULT_MAX_VALIDATIONS,
  DEFAULT_MAX_VALIDATIONS_PER_ACCOUNT,
  DEFAULT_NEW_ACCOUNT_WINDOW_MS,
  type Reply,
} from './service.js';
import type { AcmeStore } from './store.js';
import type { TxtResolver } from './dns-resolver.js';
import type { ExternalNames } from './external-resolver.js';
import type { CaaResolver } from './caa-resolver.js';
import type { AcmeCorroborate, AcmeMpicOutcome } from './mpic.js';
import { listenKeepingErrors } from '../listen.js';
import {
  applyHttpLimits,
  httpLimitServerOptions,
  httpLimits,
  type HttpLimits,
} from '../http-limits.js';

/**
 * The ACME server's HTTPS face (RFC 8555 over node:https): routing, methods, body limits, and
 * the headers every response carries — `Replay-Nonce` (§6.5) and `Link: <directory>;rel="index"`
 * (§7.1). GET serves the directory, nonces and renewal information (RFC 9773); everything else
 * is POST. The protocol itself is in service.ts. See docs/acme.md.
 */

/**
 * The ACME server's idle timeout: longer than the longest wait of a request for its issuer
 * (a revocation waiting for its commit, 120 s with the node's issuer).
 */
export const ACME_IDLE_TIMEOUT_MS = 180_000;
export interface AcmeServerOptions {
  /** Address to listen on; port 0 picks a free port. */
  readonly host: string;
  readonly port: number;
  /** PEM private key and certificate chain (leaf first) of the server's HTTPS certificate. */
  readonly tls: { readonly key: string; readonly cert: string };
  /**
   * The URL clients reach the server at, without a trailing slash (e.g. `https://acme.example`).
   * Every JWS `url` must start with it. Default `https://<host>:<bound port>`.
   */
  readonly baseUrl?: string;
  readonly store: AcmeStore;
  readonly issuer: AcmeIssuer;
  /** Which identifiers may be ordered; anything syntactically valid when absent. */
  readonly identifiers?: IdentifierPolicy;
  /** http-01 port (default 80, RFC 8555 §8.3). */
  readonly http01Port?: number;
  /** tls-alpn-01 port (default 443, RFC 8737 §3). */
  readonly tlsAlpn01Port?: number;
  /**
   * TEST ONLY — connect every http-01 and tls-alpn-01 validation to this IP address instead of
   * resolving the identifier (Host header and SNI still name it). Never set it in a deployment:
   * validation would then prove nothing about who controls a name. Default: unset.
   */
  readonly testOnlyConnectAddress?: string;
  /** dns-01 lookups; without one, dns-01 (and so wildcard names) is not offered. */
  readonly txtResolver?: TxtResolver;
  /**
   * External domain names (docs/acme.md, "External names"): names `isExternal` calls external
   * are connected to and looked up (A/AAAA, TXT) through its resolver. Give CAA lookups for
   * them with `caaResolver` (`SplitCaaResolver`).
   */
  readonly external?: ExternalNames;
  /**
   * TEST ONLY (`ValidationOptions.allowNonPublicAddresses`): DNS names may resolve to
   * loopback, private or link-local addresses and are still connected to. Default false.
   */
  readonly allowNonPublicAddresses?: boolean;
  /**
   * The deadline of a whole validation (default 10 s): the challenge check, the CAA check and
   * the corroboration; also of finalize's CAA re-check.
   */
  readonly validationTimeoutMs?: number;
  /**
   * Validations running at once over all accounts (default 32) and per account (default 8);
   * challenges over a cap stay `processing` and wait their turn, first in first out.
   */
  readonly maxValidations?: number;
  readonly maxValidationsPerAccount?: number;
  /** Pending authorizations one account may hold (default 300); more is `rateLimited` (429). */
  readonly maxPendingAuthorizationsPerAccount?: number;
  /**
   * New accounts one client address (IPv4 address, IPv6 /64) may create per
   * `newAccountWindowMs` (default 10 per 3 hours); more is `rateLimited` (429). The address is
   * the TCP peer's: behind a reverse proxy every client shares the proxy's, so raise it there.
   */
  readonly maxNewAccountsPerAddress?: number;
  readonly newAccountWindowMs?: number;
  readonly termsOfService?: string;
  readonly website?: string;
  /**
   * The issuer domain names CAA `issue`/`issuewild` values name this CA by (RFC 8555 §7.1.1
   * directory `meta.caaIdentities`, RFC 8659 §4.2); required with `caaResolver`.
   */
  readonly caaIdentities?: readonly string[];
  /**
   * CAA lookups (RFC 8659): with one, a name whose Relevant CAA RRset does not authorize one of
   * `caaIdentities` (with this account and validation method, RFC 8657) is refused with the
   * `caa` problem, when its challenge validates and again at finalize. Without one, no CAA check.
   */
  readonly caaResolver?: CaaResolver;
  /**
   * Multi-perspective validation (docs/acme.md): asks the CA's validators to corroborate each
   * challenge that validated here; a challenge needs them from validators holding more than 2/3
   * of the voting power (`dcvQuorum`).
   * Absent: local validation only (e.g. with the in-process `LocalIssuer`).
   */
  readonly corroborate?: AcmeCorroborate;
  /**
   * Connection limits and timeouts of the HTTPS server (src/faces/http-limits.ts); each one left
   * out is `DEFAULT_HTTP_LIMITS`'s.
   */
  readonly limits?: Partial<HttpLimits>;
  /** Largest request body (default 64 KiB); larger gets 413. */
  readonly maxBodyBytes?: number;
  /** Live nonces kept (default 10 000) and how long one stays usable (default 1 hour). */
  readonly maxNonces?: number;
  readonly nonceLifetimeMs?: number;
  /** Default 7 days, 7 days and 30 days. */
  readonly orderLifetimeMs?: number;
  readonly pendingAuthorizationLifetimeMs?: number;
  readonly validAuthorizationLifetimeMs?: number;
  readonly now?: () => number;
  /** `hypermesh_acme_requests_total` is registered here when given. */
  readonly registry?: Registry;
  /**
   * Unexpected failures no client can be told about: in background validation or issuance, and
   * internal errors behind a `serverInternal` reply (default: ignored). For logging.
   */
  readonly onInternalError?: (error: unknown) => void;
}

export interface AcmeServer {
  /** The base URL (see `AcmeServerOptions.baseUrl`). */
  readonly url: string;
  readonly directoryUrl: string;
  readonly port: number;
  /** Emits `change` after every background state change (validation, issuance). */
  readonly events: EventEmitter;
  /** Live nonces, for tests of the bound. */
  readonly nonceCount: () => number;
  /**
   * Serves `tls` (same form as `AcmeServerOptions.tls`) on new TLS handshakes from now on
   * (`tls.Server#setSecureContext`); open connections keep the certificate they were set up
   * with. Refuses (INVALID_OPTIONS) a certificate that does not parse, a key that is not its
   * key, or anything else the TLS stack rejects, and then keeps serving the current one.
   */
  replaceCertificate(tls: AcmeServerOptions['tls']): void;
  /**
   * Stops listening, drops connections, waits for running validations and issuances. Queued
   * validations are not started; they stay `processing` and resume on the next start. Does not
   * close the store.
   */
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
const MAX_HEADER_BYTES = 16 * 1024;
const DAY_MS = 86_400_000;

function positive(value: number | undefined, fallback: number, name: string): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 1) {
    throw new AcmeError(AcmeErrorCode.INVALID_OPTIONS, `${name} must be a positive integer`, {
      [name]: chosen,
    });
  }
  return chosen;
}

const JOSE_TYPE = 'application/jose+json';

/** The TLS part of the server's options: also what `setSecureContext` is given again in full. */
function secureContextOptions(tls: AcmeServerOptions['tls']): SecureContextOptions {
  return { key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' };
}

/** Throws INVALID_OPTIONS unless `tls` can serve: its leaf certifies its key, OpenSSL takes both. */
function checkServingCertificate(tls: AcmeServerOptions['tls']): void {
  try {
    const leaf = new X509Certificate(tls.cert);
    if (!leaf.checkPrivateKey(createPrivateKey(tls.key))) {
      throw new Error('the private key does not belong to the certificate');
    }
    createSecureContext(secureContextOptions(tls));
  } catch (error) {
    throw new AcmeError(
      AcmeErrorCode.INVALID_OPTIONS,
      `HTTPS certificate or key refused: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
}

const ISSUER_DOMAIN = /^[a-z0-9](?:-*[a-z0-9])*(?:\.[a-z0-9](?:-*[a-z0-9])*)*$/;

/** `caaIdentities` lowercased, each an issuer domain name (RFC 8659 §4.2); required with a resolver. */
function checkCaaIdentities(
  identities: readonly string[] | undefined,
  resolver: CaaResolver | undefined,
): readonly string[] | undefined {
  if (identities === undefined) {
    if (resolver === undefined) return undefined;
    throw new AcmeError(
      AcmeErrorCode.INVALID_OPTIONS,
      'caaResolver needs caaIdentities: the issuer domain names CAA records name this CA by',
    );
  }
  const lower = identities.map((identity) => identity.toLowerCase());
  const bad = lower.find((identity) => identity.length > 253 || !ISSUER_DOMAIN.test(identity));
  if (bad !== undefined || (resolver !== undefined && lower.length === 0)) {
    throw new AcmeError(
      AcmeErrorCode.INVALID_OPTIONS,
      bad === undefined
        ? 'caaIdentities is empty'
        : `caaIdentities: ${JSON.stringify(bad)} is not an issuer domain name (RFC 8659 §4.2)`,
      { caaIdentities: identities },
    );
  }
  return lower;
}

export async function startAcmeServer(options: AcmeServerOptions): Promise<AcmeServer> {
  const now = options.now ?? Date.now;
  const maxBodyBytes = positive(options.maxBodyBytes, DEFAULT_MAX_BODY_BYTES, 'maxBodyBytes');
  const http01Port = positive(options.http01Port, HTTP01_PORT, 'http01Port');
  if (options.baseUrl !== undefined && !/^https:\/\/[^/?#]+$/.test(options.baseUrl)) {
    throw new AcmeError(
      AcmeErrorCode.INVALID_OPTIONS,
      'baseUrl must be https://host[:port] without a path or trailing slash',
      { baseUrl: options.baseUrl },
    );
  }
  const caaIdentities = checkCaaIdentities(options.caaIdentities, options.caaResolver);
  const limits = {
    maxValidations: positive(options.maxValidations, DEFAULT_MAX_VALIDATIONS, 'maxValidations'),
    maxValidationsPerAccount: positive(
      options.maxValidationsPerAccount,
      DEFAULT_MAX_VALIDATIONS_PER_ACCOUNT,
      'maxValidationsPerAccount',
    ),
    maxPendingAuthorizationsPerAccount: positive(
      options.maxPendingAuthorizationsPerAccount,
      DEFAULT_MAX_PENDING_AUTHORIZATIONS_PER_ACCOUNT,
      'maxPendingAuthorizationsPerAccount',
    ),
    maxNewAccountsPerAddress: positive(
      options.maxNewAccountsPerAddress,
      DEFAULT_MAX_NEW_ACCOUNTS_PER_ADDRESS,
      'maxNewAccountsPerAddress',
    ),
    newAccountWindowMs: positive(
      options.newAccountWindowMs,
      DEFAULT_NEW_ACCOUNT_WINDOW_MS,
      'newAccountWindowMs',
    ),
  };
  const nonces = new NonceStore(
    positive(options.maxNonces, 10_000, 'maxNonces'),
    positive(options.nonceLifetimeMs, 3_600_000, 'nonceLifetimeMs'),
    now,
  );
  const events = new EventEmitter();
  const requests =
    options.registry === undefined
      ? undefined
      : new Counter({
          name: 'hypermesh_acme_requests_total',
          help: 'ACME requests by endpoint and outcome (ok or the problem type)',
          labelNames: ['endpoint', 'outcome'],
          registers: [options.registry],
        });

  const mpic =
    options.registry === undefined || options.corroborate === undefined
      ? undefined
      : new Counter({
          name: 'hypermesh_acme_mpic_total',
          help: 'Multi-perspective validations of ACME challenges by outcome (corroborated, refused)',
          labelNames: ['outcome'],
          registers: [options.registry],
        });

  // A revocation waits for its commit without writing (the node's issuer up to 120 s,
  // acme-issuer.ts): the idle timeout must outlast any such wait, or the client would see a
  // reset while its revocation may still commit.
  const connectionLimits = httpLimits({ idleTimeoutMs: ACME_IDLE_TIMEOUT_MS, ...options.limits });
  const server = https.createServer({
    ...secureContextOptions(options.tls),
    maxHeaderSize: MAX_HEADER_BYTES,
    ...httpLimitServerOptions(connectionLimits),
  });
  // Malformed HTTP, an oversized header block or a request not in on time: 400, 431 or 408,
  // uncounted (`hypermesh_acme_requests_total` counts requests that reached a route).
  applyHttpLimits(server, connectionLimits);
  await listenKeepingErrors(server, options.port, options.host);
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = isIPv6(options.host) ? `[${options.host}]` : options.host;
  const base = options.baseUrl ?? `https://${hostInUrl}:${port}`;
  const urls = new AcmeUrls(base);
  const service = new AcmeService({
    store: options.store,
    issuer: options.issuer,
    urls,
    nonces,
    validation: {
      http01Port,
      timeoutMs: positive(options.validationTimeoutMs, 10_000, 'validationTimeoutMs'),
      tlsAlpn01Port: positive(options.tlsAlpn01Port, TLS_ALPN01_PORT, 'tlsAlpn01Port'),
      ...(options.testOnlyConnectAddress === undefined
        ? {}
        : { testOnlyConnectAddress: options.testOnlyConnectAddress }),
      ...(options.txtResolver === undefined ? {} : { txtResolver: options.txtResolver }),
      ...(options.external === undefined ? {} : { external: options.external }),
      ...(options.allowNonPublicAddresses === true ? { allowNonPublicAddresses: true } : {}),
    },
    identifiers: options.identifiers ?? {},
    ...(options.termsOfService === undefined ? {} : { termsOfService: options.termsOfService }),
    ...(options.website === undefined ? {} : { website: options.website }),
    ...(caaIdentities === undefined ? {} : { caaIdentities }),
    ...(options.caaResolver === undefined || caaIdentities === undefined
      ? {}
      : { caa: { resolver: options.caaResolver, identities: caaIdentities } }),
    ...(options.corroborate === undefined
      ? {}
      : {
          corroborate: options.corroborate,
          onCorroboration: (outcome: AcmeMpicOutcome) => mpic?.inc({ outcome }),
        }),
    ...limits,
    orderLifetimeMs: positive(options.orderLifetimeMs, 7 * DAY_MS, 'orderLifetimeMs'),
    pendingAuthorizationLifetimeMs: positive(
      options.pendingAuthorizationLifetimeMs,
      7 * DAY_MS,
      'pendingAuthorizationLifetimeMs',
    ),
    validAuthorizationLifetimeMs: positive(
      options.validAuthorizationLifetimeMs,
      30 * DAY_MS,
      'validAuthorizationLifetimeMs',
    ),
    now,
    events,
    onBackgroundError: options.onInternalError ?? (() => {}),
  });
  if (options.registry !== undefined) {
    new Gauge({
      name: 'hypermesh_acme_validations',
      help: 'ACME challenge validations by state: in_flight (running) or queued (waiting for a slot)',
      labelNames: ['state'],
      registers: [options.registry],
      collect() {
        const load = service.validationLoad();
        this.set({ state: 'in_flight' }, load.inFlight);
        this.set({ state: 'queued' }, load.queued);
      },
    });
  }

  const send = (
    response: ServerResponse,
    reply: Reply,
    extraHeaders: Record<string, string>,
  ): void => {
    const headers: Record<string, string> = {
      'Replay-Nonce': nonces.issue(),
      Link: `<${urls.directory}>;rel="index"`,
      'Cache-Control': 'no-store',
      ...extraHeaders,
      ...reply.headers,
    };
    if (reply.headers?.Link !== undefined) {
      headers.Link = `<${urls.directory}>;rel="index", ${reply.headers.Link}`;
    }
    let body = '';
    if (reply.json !== undefined) {
      body = JSON.stringify(reply.json);
      headers['Content-Type'] = reply.contentType ?? 'application/json';
    } else if (reply.text !== undefined) {
      body = reply.text;
      if (reply.contentType !== undefined) headers['Content-Type'] = reply.contentType;
    }
    // RFC 9110 §8.6: no Content-Length on a 204.
    if (reply.status !== 204) headers['Content-Length'] = String(Buffer.byteLength(body));
    response.writeHead(reply.status, headers);
    response.end(response.req.method === 'HEAD' ? undefined : body);
  };

  const problemReply = (error: AcmeProblem): Reply => ({
    status: error.status,
    json: error.asDocument(),
    contentType: 'application/problem+json',
    ...(error.options.headers === undefined ? {} : { headers: error.options.headers }),
  });

  const readBody = (request: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const declared = request.headers['content-length'];
      if (declared !== undefined && Number(declared) > maxBodyBytes) {
        reject(tooLarge(maxBodyBytes));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      request.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBodyBytes) {
          request.removeAllListeners('data');
          request.pause();
          reject(tooLarge(maxBodyBytes));
          return;
        }
        chunks.push(chunk);
      });
      request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      request.on('error', reject);
    });

  const handle = async (
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<Route['kind'] | 'unknown'> => {
    const target = request.url ?? '';
    const route = routeOf(target);
    if (route === undefined)
      throw malformed(`no resource at ${target.slice(0, 200)}`, { status: 404 });
    const method = request.method ?? '';
    if (route.kind === 'directory' || route.kind === 'newNonce') {
      if (method !== 'GET' && method !== 'HEAD') {
        throw malformed(`${method} is not allowed here`, {
          status: 405,
          headers: { Allow: 'GET, HEAD' },
        });
      }
      if (route.kind === 'directory') send(response, service.directory(), {});
      // §7.2: 200 for HEAD, 204 for GET.
      else send(response, { status: method === 'HEAD' ? 200 : 204 }, {});
      return route.kind;
    }
    if (route.kind === 'renewalInfo') {
      // RFC 9773 §4.2: an unauthenticated GET, so any party (a monitor, a load balancer) may ask.
      if (method !== 'GET' && method !== 'HEAD') {
        throw malformed(`${method} is not allowed here; renewal information is a GET`, {
          status: 405,
          headers: { Allow: 'GET, HEAD' },
        });
      }
      send(response, service.renewalInfo(route.certId), {});
      return route.kind;
    }
    if (method !== 'POST') {
      throw malformed(`${method} is not allowed here; use POST or POST-as-GET (RFC 8555 §6.3)`, {
        status: 405,
        headers: { Allow: 'POST' },
      });
    }
    const contentType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (contentType !== JOSE_TYPE) {
      throw malformed(`the Content-Type must be ${JOSE_TYPE}`, { status: 415 });
    }
    const body = await readBody(request);
    send(
      response,
      await service.post(route, body, `${base}${target}`, request.socket.remoteAddress),
      {},
    );
    return route.kind;
  };

  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    void handle(request, response).then(
      (endpoint) => requests?.inc({ endpoint, outcome: 'ok' }),
      (error: unknown) => {
        const refusal =
          error instanceof AcmeProblem
            ? error
            : problem(ProblemType.serverInternal, 'internal server error');
        if (!(error instanceof AcmeProblem)) options.onInternalError?.(error);
        const endpoint = routeOf(request.url ?? '')?.kind ?? 'unknown';
        requests?.inc({ endpoint, outcome: refusal.code });
        if (response.headersSent) {
          response.destroy();
          return;
        }
        // An unread oversized body: answer, then close rather than drain it.
        const close: Record<string, string> = refusal.status === 413 ? { Connection: 'close' } : {};
        send(response, problemReply(refusal), close);
      },
    );
  });

  service.resume();
  return {
    url: base,
    directoryUrl: urls.directory,
    port,
    events,
    nonceCount: () => nonces.size,
    replaceCertificate(tls) {
      checkServingCertificate(tls);
      // setSecureContext resets every TLS option it is not given, so it gets them all again.
      server.setSecureContext(secureContextOptions(tls));
    },
    async close() {
      service.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await service.idle();
    },
  };
}

function tooLarge(max: number): AcmeProblem {
  return malformed(`the request body is larger than ${max} bytes`, { status: 413 });
}
