import type { IncomingMessage, ServerResponse } from 'node:http';
import { BoundedMap } from '../codec/bounded-map.js';
import { clientAddressKey } from './dns/connection-slots.js';
import {
  CaError,
  CaErrorCode,
  MAX_OCSP_REQUEST_BYTES,
  OcspResponseStatus,
  buildOcspResponse,
  certIdMatchesIssuer,
  ocspErrorResponse,
  parseOcspRequest,
  type CertificateSigner,
  type Issuer,
  type OcspCertStatus,
} from '../trustchain/ca/index.js';

/**
 * The OCSP responder (RFC 6960, HTTP transport per Appendix A / RFC 5019) of one validator's
 * intermediate, served on the node's CT HTTP listener (src/faces/ct-http.ts, docs/ca.md "OCSP"):
 *
 * - `POST /` or `POST /ocsp` with `content-type: application/ocsp-request` and the DER request;
 * - `GET /ocsp/<url-encoded base64 request>`.
 *
 * The intermediate itself signs (the CA is its own responder, §2.6): the node holds only its own
 * intermediate's key, so it answers for the certificates that intermediate issued and answers
 * `unauthorized` when a request names another issuer (ask that validator's node). Statuses come
 * from the committed `ca` state through `status`.
 *
 * An answer is only as fresh as the state it was read from: thisUpdate is the time of the last
 * committed block (its BFT time), not the wall clock, so a node that is syncing, partitioned or
 * stalled cannot vouch for "good now" about a certificate revoked in a block it has not applied.
 * Once that block is older than `maxBlockAgeMs` the responder answers `tryLater` (RFC 6960
 * §4.2.1, unsigned) instead of signing.
 */
export interface OcspResponderOptions {
  readonly issuer: Issuer;
  readonly signer: CertificateSigner;
  /** The status of a certificate of `issuer` by its serial (unsigned magnitude), from committed state. */
  readonly status: (serial: Uint8Array) => OcspCertStatus;
  /**
   * The time (ms) of the last committed block, the one `status` reads from; null while nothing is
   * committed.
   */
  readonly committedTime: () => number | null;
  /** Clock (ms) for producedAt and the age check; default Date.now. */
  readonly now?: () => number;
  /** nextUpdate − thisUpdate; default `OCSP_VALIDITY_MS`. */
  readonly validityMs?: number;
  /** Oldest last committed block answered from; default `OCSP_MAX_BLOCK_AGE_MS`. */
  readonly maxBlockAgeMs?: number;
  /** Responses signed afresh per second at most; default `OCSP_MAX_SIGNED_PER_SECOND`. */
  readonly maxSignedPerSecond?: number;
  /**
   * Requests the cache cannot answer (parsed, refused, malformed or signed) per second at most,
   * from all clients together; default `OCSP_MAX_REQUESTS_PER_SECOND`.
   */
  readonly maxRequestsPerSecond?: number;
  /**
   * Of those, per second at most from one client (`clientAddressKey`: an IPv4 address, an IPv6
   * /64); default `OCSP_MAX_REQUESTS_PER_CLIENT_PER_SECOND`.
   */
  readonly maxRequestsPerClientPerSecond?: number;
}

/** What one OCSP request came to (counted by the caller). */
export type OcspOutcome =
  'good' | 'revoked' | 'unknown' | 'mixed' | 'malformed' | 'unauthorized' | 'try_later' | 'error';

/**
 * Answers one DER request from `client`, the remote address it came from (`socket.remoteAddress`).
 * Without `client` only the bounds shared by all clients apply: a caller that knows the address
 * must pass it, or one client can take the whole `maxRequestsPerSecond`.
 */
export type OcspResponder = (
  request: Uint8Array,
  client?: string,
) => {
  readonly response: Uint8Array;
  readonly outcome: OcspOutcome;
};

/** Responses say "good until" this long after their thisUpdate (the block time). */
export const OCSP_VALIDITY_MS = 3_600_000;
/**
 * Default bound on the age of the last committed block an answer is signed from: 5 minutes.
 * Even an idle cluster commits about a block a second, so a node this far behind is syncing,
 * partitioned or stalled. The node configures it as `ca.maxBlockAgeSeconds`.
 */
export const OCSP_MAX_BLOCK_AGE_MS = 300_000;
/**
 * Responses the responder signs afresh per second at most (each is a P-256 signature on the
 * node's main thread, ~1 ms with the deterministic signer): beyond it, `tryLater` (unsigned). A
 * request without a nonce is answered from a cache of the responses signed for the current block
 * (`OCSP_CACHE_ENTRIES`), which costs no signature: only requests carrying a nonce (which must
 * be echoed, RFC 8954) are signed each time. With `OCSP_MAX_REQUESTS_PER_SECOND`, the responder
 * takes about a fifth of a core at most, plus ~10 µs per cache hit (measured figures in
 * docs/ca.md "OCSP").
 */
export const OCSP_MAX_SIGNED_PER_SECOND = 200;
/**
 * Requests the cache cannot answer that the responder reads per second at most, from all clients
 * together: beyond it, `tryLater` (a constant unsigned answer) without parsing. Signing is not the
 * only cost: such a request is parsed and each of its (up to 32) CertIDs compared with the
 * issuer's hashes, and refusals are not signed, so without this bound nothing but the HTTP server
 * would bound them. A request the cache answers is never refused: it costs a lookup.
 */
export const OCSP_MAX_REQUESTS_PER_SECOND = 1_000;
/**
 * Of `OCSP_MAX_REQUESTS_PER_SECOND`, what one client (an IPv4 address, an IPv6 /64) may use a
 * second: one client flooding garbage or nonces takes 20 of the 1,000 reads and 20 of the 200
 * signatures, not all of them. A relying party asks about a certificate about once an hour.
 */
export const OCSP_MAX_REQUESTS_PER_CLIENT_PER_SECOND = 20;
export const OCSP_CACHE_ENTRIES = 1024;
export const OCSP_REQUEST_TYPE = 'application/ocsp-request';
export const OCSP_RESPONSE_TYPE = 'application/ocsp-response';

export function createOcspResponder(options: OcspResponderOptions): OcspResponder {
  const now = options.now ?? Date.now;
  const validity = options.validityMs ?? OCSP_VALIDITY_MS;
  const maxAge = options.maxBlockAgeMs ?? OCSP_MAX_BLOCK_AGE_MS;
  const maxSigned = options.maxSignedPerSecond ?? OCSP_MAX_SIGNED_PER_SECOND;
  const maxRequests = options.maxRequestsPerSecond ?? OCSP_MAX_REQUESTS_PER_SECOND;
  const maxPerClient =
    options.maxRequestsPerClientPerSecond ?? OCSP_MAX_REQUESTS_PER_CLIENT_PER_SECOND;
  /** Nonce-less answers of the block `cachedFor`, by request bytes. */
  let cache = new BoundedMap<string, CachedAnswer>(OCSP_CACHE_ENTRIES);
  let cachedFor: number | null = null;
  /**
   * The answers of the block before (`previousFor`): given when a bound would refuse a request
   * with `tryLater`, while that block is fresh, so a flood at a new block cannot empty the cache
   * for good (it refills only through answers that pass the bounds).
   */
  let previous = new BoundedMap<string, CachedAnswer>(OCSP_CACHE_ENTRIES);
  let previousFor: number | null = null;
  let second = -1;
  let signedThisSecond = 0;
  let requestsThisSecond = 0;
  /**
   * Requests read this second by client key. An entry is added only for a request within
   * `maxRequests`, so it holds at most `maxRequests` entries.
   */
  const perClient = new Map<string, number>();
  const tryLater = (): ReturnType<OcspResponder> => ({
    response: ocspErrorResponse(OcspResponseStatus.tryLater),
    outcome: 'try_later',
  });
  const isFresh = (blockTime: number | null, wallClock: number): blockTime is number =>
    blockTime !== null && wallClock - blockTime <= maxAge;
  /** `tryLater`, unless the block before answered these very bytes and is still fresh. */
  const busy = (cacheKey: string, wallClock: number): ReturnType<OcspResponder> => {
    const stale = isFresh(previousFor, wallClock) ? previous.peek(cacheKey) : undefined;
    // Only while every certificate it names still has the status it gave: a revocation since
    // is never answered "good" (a state read per CertID, no parsing, no signature).
    if (stale === undefined || !stale.statuses.every(sameStatus(options.status))) {
      return tryLater();
    }
    return stale.answer;
  };
  return (der, client) => {
    const wallClock = now();
    const currentSecond = Math.floor(wallClock / 1000);
    if (currentSecond !== second) {
      second = currentSecond;
      signedThisSecond = 0;
      requestsThisSecond = 0;
      perClient.clear();
    }
    const blockTime = options.committedTime();
    // The cache holds only answers to well-formed, authorized, nonce-less requests of the
    // current block, by their exact bytes: a hit needs no parsing and no signature, so it is
    // answered before any bound (one client's flood cannot refuse it to the others).
    const cacheKey = Buffer.from(der).toString('hex');
    if (isFresh(blockTime, wallClock)) {
      if (cachedFor !== blockTime) {
        previous = cache;
        previousFor = cachedFor;
        cache = new BoundedMap(OCSP_CACHE_ENTRIES);
        cachedFor = blockTime;
      }
      const cached = cache.get(cacheKey);
      if (cached !== undefined) return cached.answer;
    }
    const clientKey = client === undefined ? null : clientAddressKey(client);
    const clientUsed = clientKey === null ? 0 : (perClient.get(clientKey) ?? 0);
    if (clientUsed >= maxPerClient || requestsThisSecond >= maxRequests) {
      return busy(cacheKey, wallClock);
    }
    requestsThisSecond++;
    if (clientKey !== null) perClient.set(clientKey, clientUsed + 1);
    let parsed;
    try {
      parsed = parseOcspRequest(der);
    } catch (error) {
      if (error instanceof CaError && error.code === CaErrorCode.OCSP_MALFORMED) {
        return {
          response: ocspErrorResponse(OcspResponseStatus.malformedRequest),
          outcome: 'malformed',
        };
      }
      throw error;
    }
    if (!parsed.certIds.every((certId) => certIdMatchesIssuer(certId, options.issuer))) {
      return {
        response: ocspErrorResponse(OcspResponseStatus.unauthorized),
        outcome: 'unauthorized',
      };
    }
    if (!isFresh(blockTime, wallClock)) return tryLater();
    if (signedThisSecond >= maxSigned) return busy(cacheKey, wallClock);
    signedThisSecond++;
    const thisUpdate = wholeSeconds(blockTime);
    const nextUpdate = new Date(thisUpdate.getTime() + validity);
    const responses = parsed.certIds.map((certId) => ({
      certId,
      status: options.status(certId.serial),
      thisUpdate,
      nextUpdate,
    }));
    const kinds = new Set(responses.map((single) => single.status.status));
    const outcome: OcspOutcome =
      kinds.size === 1 ? (responses[0]?.status.status ?? 'unknown') : 'mixed';
    const answer = {
      response: buildOcspResponse({
        issuer: options.issuer,
        signer: options.signer,
        producedAt: wholeSeconds(wallClock),
        responses,
        nonce: parsed.nonce,
      }),
      outcome,
    };
    if (parsed.nonce === null) {
      cache.set(cacheKey, {
        answer,
        statuses: responses.map(({ certId, status }) => ({ serial: certId.serial, status })),
      });
    }
    return answer;
  };
}

/** A cached answer, with what it said of each certificate (checked again before reuse). */
interface CachedAnswer {
  readonly answer: ReturnType<OcspResponder>;
  readonly statuses: readonly { readonly serial: Uint8Array; readonly status: OcspCertStatus }[];
}

/** Whether `status` still says what a cached answer said of one certificate. */
function sameStatus(
  status: (serial: Uint8Array) => OcspCertStatus,
): (entry: CachedAnswer['statuses'][number]) => boolean {
  return ({ serial, status: then }) => {
    const now = status(serial);
    return (
      now.status === then.status &&
      (now.status !== 'revoked' ||
        (then.status === 'revoked' &&
          now.time.getTime() === then.time.getTime() &&
          now.reason === then.reason))
    );
  };
}

function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

/** Whether `method` + `path` is an OCSP request for this listener. */
export function isOcspRequest(method: string | undefined, path: string): boolean {
  if (method === 'POST') return path === '/' || path === '/ocsp';
  return (method === 'GET' || method === 'HEAD') && path.startsWith('/ocsp/');
}

class BodyTooLarge extends Error {}

async function readBody(request: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(request.headers['content-length'] ?? '0');
  if (declared > limit) throw new BodyTooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function decodeGetPath(path: string): Uint8Array | null {
  let text: string;
  try {
    text = decodeURIComponent(path.slice('/ocsp/'.length));
  } catch {
    return null;
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/**
 * Answers one HTTP OCSP request (`isOcspRequest` is true) and returns its outcome. OCSP-level
 * failures are 200 with an OCSP error status (RFC 5019 §5); HTTP-level ones (a body over
 * `MAX_OCSP_REQUEST_BYTES`, a wrong content type) are 413 / 415.
 */
export async function serveOcsp(
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  responder: OcspResponder | null,
): Promise<OcspOutcome | 'too_large' | 'unsupported_media_type' | 'unavailable'> {
  const send = (status: number, body: Uint8Array, type: string, close = false): void => {
    const headers: Record<string, string | number> = {
      'content-type': type,
      'content-length': body.length,
      'cache-control': 'no-cache',
    };
    if (close) headers.connection = 'close';
    response.writeHead(status, headers);
    response.end(request.method === 'HEAD' ? undefined : body);
  };
  let der: Uint8Array | null;
  if (request.method === 'POST') {
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== OCSP_REQUEST_TYPE) {
      send(415, new TextEncoder().encode(`expected ${OCSP_REQUEST_TYPE}\n`), 'text/plain', true);
      return 'unsupported_media_type';
    }
    try {
      der = await readBody(request, MAX_OCSP_REQUEST_BYTES);
    } catch (error) {
      if (!(error instanceof BodyTooLarge)) throw error;
      send(413, new TextEncoder().encode('request too large\n'), 'text/plain', true);
      return 'too_large';
    }
  } else {
    der = decodeGetPath(path);
  }
  if (responder === null) {
    send(200, ocspErrorResponse(OcspResponseStatus.unauthorized), OCSP_RESPONSE_TYPE);
    return 'unavailable';
  }
  if (der === null) {
    send(200, ocspErrorResponse(OcspResponseStatus.malformedRequest), OCSP_RESPONSE_TYPE);
    return 'malformed';
  }
  let answer: ReturnType<OcspResponder>;
  try {
    answer = responder(der, request.socket.remoteAddress);
  } catch {
    send(200, ocspErrorResponse(OcspResponseStatus.internalError), OCSP_RESPONSE_TYPE);
    return 'error';
  }
  send(200, answer.response, OCSP_RESPONSE_TYPE);
  return answer.outcome;
}
