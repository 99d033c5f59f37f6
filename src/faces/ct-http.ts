import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import { toBase64 } from '../crypto/bytes.js';
import {
  CtError,
  CtErrorCode,
  TILE_WIDTH,
  openRfc6962Signature,
  parseCheckpointBody,
  parseSignedNote,
  parseTilePath,
  rfc6962KeyId,
  type CtLog,
  type Rfc6962LogKey,
} from '../trustchain/ct/index.js';
import { BadParameter, hashParam, integerParam } from './ct/params.js';
import { isOcspRequest, serveOcsp, type OcspResponder } from './ocsp-http.js';
import { listenKeepingErrors } from './listen.js';
import {
  DEFAULT_HTTP_LIMITS,
  applyHttpLimits,
  httpLimitServerOptions,
  httpLimits,
  type HttpLimits,
} from './http-limits.js';

/**
 * The transparency log's HTTP read face: the RFC 6962 §4 read API (`/ct/v1/get-sth`,
 * `get-sth-consistency`, `get-proof-by-hash`, `get-entries`, `get-roots`) and the C2SP
 * tlog-tiles resources (`/checkpoint`, `/tile/<L>/<N>[.p/<W>]`, `/tile/entries/<N>[.p/<W>]`).
 * It only reads the log it is given. Errors are JSON `{error_code, error_message}` (the shape
 * of RFC 9162 §5) with the matching HTTP status; see docs/ct.md.
 */
export interface CtHttpOptions {
  readonly log: CtLog;
  /** Address to listen on; port 0 picks a free port. */
  readonly host: string;
  readonly port: number;
  /** DER certificates `get-roots` returns (the cluster roots the log accepts chains to). */
  readonly roots: () => readonly Uint8Array[];
  /** The ECDSA P-256 log key whose RFC 6962 signature `get-sth` serves. */
  readonly rfc6962Key?: Rfc6962LogKey;
  /** Requests are counted here (never the global registry). */
  readonly registry: Registry;
  readonly metricsPrefix?: string;
  /**
   * The CRL `GET /crl` serves (DER, `application/pkix-crl`): the node's intermediate's, from the
   * TrustChain CA (docs/ca.md). Absent: 404; returning null: 503 with `Retry-After` (no
   * intermediate yet, or the node's last committed block is too old to sign from).
   */
  readonly crl?: () => Uint8Array | null;
  /**
   * The OCSP responder of the node's intermediate (src/faces/ocsp-http.ts): `POST /`,
   * `POST /ocsp`, `GET /ocsp/<base64>`. Absent: those are ordinary (refused) requests; null: every
   * OCSP request is answered `unauthorized` (a node without an intermediate).
   */
  readonly ocsp?: OcspResponder | null;
  /** Connection limits and timeouts; each one left out is `DEFAULT_CT_HTTP_LIMITS`'s. */
  readonly limits?: Partial<CtHttpLimits>;
}

/** The CT face's connection limits and timeouts: the shared ones (src/faces/http-limits.ts). */
export type CtHttpLimits = HttpLimits;

export const DEFAULT_CT_HTTP_LIMITS: CtHttpLimits = DEFAULT_HTTP_LIMITS;

export interface CtHttpServer {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  close(): Promise<void>;
}

/** Most entries one `get-entries` response carries; a larger range is cut to this many. */
export const MAX_GET_ENTRIES = 256;
/** Longest request target (path and query) accepted; longer gets 414. */
export const MAX_REQUEST_TARGET = 2_048;
/** Largest request header block; Node answers 431 above it. */
export const MAX_HEADER_BYTES = 16_384;

type Outcome =
  | 'ok'
  | 'bad_request'
  | 'not_found'
  | 'method_not_allowed'
  | 'too_large'
  | 'uri_too_long'
  | 'unavailable'
  | 'error';

const STATUS: Record<Outcome, number> = {
  ok: 200,
  bad_request: 400,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  uri_too_long: 414,
  unavailable: 503,
  error: 500,
};

/** Seconds a client is told to wait (`Retry-After`) before asking again for an unavailable CRL. */
export const CRL_RETRY_AFTER_SECONDS = 30;

class HttpFailure extends Error {
  constructor(
    readonly outcome: Exclude<Outcome, 'ok'>,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

interface Reply {
  readonly body: string | Uint8Array;
  readonly contentType: string;
  readonly cacheControl?: string;
}

const JSON_TYPE = 'application/json';
const IMMUTABLE = 'public, max-age=31536000, immutable';

function json(value: unknown): Reply {
  return { body: JSON.stringify(value), contentType: JSON_TYPE, cacheControl: 'no-cache' };
}

/** CtError codes that are the caller's fault (400) or name nothing in the log (404). */
function failureFor(error: unknown): HttpFailure {
  if (error instanceof HttpFailure) return error;
  if (error instanceof BadParameter) return new HttpFailure('bad_request', error.message);
  if (error instanceof CtError) {
    switch (error.code) {
      case CtErrorCode.OUT_OF_RANGE:
      case CtErrorCode.INVALID_HASH:
        return new HttpFailure('bad_request', error.message);
      case CtErrorCode.UNKNOWN_LEAF:
      case CtErrorCode.UNKNOWN_TREE_HEAD:
        return new HttpFailure('not_found', error.message);
      default:
        break;
    }
  }
  return new HttpFailure('error', 'internal error');
}

export async function startCtHttpServer(options: CtHttpOptions): Promise<CtHttpServer> {
  const { log } = options;
  const requests = new Counter({
    name: `${options.metricsPrefix ?? 'hypermesh_ct_'}http_requests_total`,
    help: 'CT log HTTP requests by endpoint and outcome',
    labelNames: ['endpoint', 'outcome'],
    registers: [options.registry],
  });

  const getSth = (): Reply => {
    const key = options.rfc6962Key;
    if (key === undefined) {
      throw new HttpFailure('unavailable', 'this server has no RFC 6962 log key configured');
    }
    const latest = log.latestSignedCheckpoint();
    if (latest === undefined) throw new HttpFailure('unavailable', 'no signed tree head yet');
    const note = parseSignedNote(latest.note);
    const checkpoint = parseCheckpointBody(note.text);
    const keyId = rfc6962KeyId(key.name, key.publicKey);
    for (const line of note.signatures) {
      if (line.name !== key.name || line.keyId !== keyId) continue;
      const opened = openRfc6962Signature(checkpoint, line.signature, key.publicKey);
      if (opened === undefined) continue;
      return json({
        tree_size: checkpoint.size,
        timestamp: opened.timestamp,
        sha256_root_hash: toBase64(checkpoint.root),
        tree_head_signature: toBase64(opened.digitallySigned),
      });
    }
    throw new HttpFailure('unavailable', 'the latest tree head has no RFC 6962 signature yet');
  };

  const getConsistency = (query: URLSearchParams): Reply => {
    const first = integerParam(query, 'first');
    const second = integerParam(query, 'second');
    if (first < 1) throw new BadParameter('first must be at least 1');
    if (first > second)
      throw new BadParameter(`first (${first}) is larger than second (${second})`);
    if (second > log.size)
      throw new BadParameter(`second (${second}) is beyond the tree size ${log.size}`);
    return json({ consistency: log.consistencyProof(first, second).map(toBase64) });
  };

  const getProofByHash = (query: URLSearchParams): Reply => {
    const hash = hashParam(query, 'hash');
    const treeSize = integerParam(query, 'tree_size');
    if (treeSize < 1 || treeSize > log.size) {
      throw new BadParameter(`tree_size must be in 1..${log.size}`);
    }
    const index = log.findLeafIndex(hash, treeSize);
    return json({
      leaf_index: index,
      audit_path: log.inclusionProof(index, treeSize).map(toBase64),
    });
  };

  const getEntries = (query: URLSearchParams): Reply => {
    const start = integerParam(query, 'start');
    const end = integerParam(query, 'end');
    if (start > end) throw new BadParameter(`start (${start}) is larger than end (${end})`);
    if (start >= log.size)
      throw new BadParameter(`start (${start}) is beyond the log (${log.size})`);
    // RFC 6962 §4.6 lets a log return fewer entries than asked; the range is cut, not refused.
    const last = Math.min(end, log.size - 1, start + MAX_GET_ENTRIES - 1);
    const entries = log.entries(start, last + 1).map((entry) => ({
      leaf_input: toBase64(entry.leaf),
      extra_data: toBase64(entry.extraData),
    }));
    return json({ entries });
  };

  const getRoots = (): Reply => json({ certificates: options.roots().map(toBase64) });

  const getCheckpoint = (): Reply => {
    const latest = log.latestSignedCheckpoint();
    if (latest === undefined) throw new HttpFailure('unavailable', 'no signed checkpoint yet');
    return {
      body: latest.note,
      contentType: 'text/plain; charset=utf-8',
      cacheControl: 'no-cache',
    };
  };

  const getTile = (path: string): Reply => {
    const tile = parseTilePath(path);
    if (tile === undefined) throw new HttpFailure('not_found', `no such tile path ${path}`);
    const data =
      tile.kind === 'entries'
        ? log.entryBundle(tile.index, tile.width)
        : log.tile(tile.level, tile.index, tile.width);
    if (data === undefined) {
      const what = tile.width === TILE_WIDTH ? 'full tile' : `tile of width ${tile.width}`;
      throw new HttpFailure('not_found', `the log has no ${what} at ${path}`);
    }
    return { body: data, contentType: 'application/octet-stream', cacheControl: IMMUTABLE };
  };

  const getCrl = (): Reply => {
    if (options.crl === undefined) throw new HttpFailure('not_found', 'this server serves no CRL');
    const der = options.crl();
    if (der === null) {
      throw new HttpFailure('unavailable', 'no CRL is available', CRL_RETRY_AFTER_SECONDS);
    }
    return { body: der, contentType: 'application/pkix-crl', cacheControl: 'no-cache' };
  };

  const routes = new Map<string, (query: URLSearchParams) => Reply>([
    ['/ct/v1/get-sth', getSth],
    ['/ct/v1/get-sth-consistency', getConsistency],
    ['/ct/v1/get-proof-by-hash', getProofByHash],
    ['/ct/v1/get-entries', getEntries],
    ['/ct/v1/get-roots', getRoots],
    ['/checkpoint', getCheckpoint],
    ['/crl', getCrl],
  ]);
  const endpointOf = (path: string): string => {
    if (routes.has(path)) return path.replace('/ct/v1/', '').replace('/', '');
    if (path.startsWith('/tile/entries/')) return 'tile_entries';
    if (path.startsWith('/tile/')) return 'tile';
    return 'unknown';
  };

  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    const target = request.url ?? '';
    const queryAt = target.indexOf('?');
    const path = queryAt < 0 ? target : target.slice(0, queryAt);
    const endpoint = endpointOf(path);
    let reply: Reply;
    let outcome: Outcome = 'ok';
    let retryAfter: number | undefined;
    try {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.setHeader('allow', 'GET, HEAD');
        throw new HttpFailure('method_not_allowed', `method ${request.method ?? ''} not allowed`);
      }
      if (target.length > MAX_REQUEST_TARGET) {
        throw new HttpFailure('uri_too_long', `request target longer than ${MAX_REQUEST_TARGET}`);
      }
      const hasBody =
        request.headers['transfer-encoding'] !== undefined ||
        (request.headers['content-length'] ?? '0') !== '0';
      if (hasBody) throw new HttpFailure('too_large', 'read requests carry no body');
      const query = new URLSearchParams(queryAt < 0 ? '' : target.slice(queryAt + 1));
      const route = routes.get(path);
      if (route !== undefined) reply = route(query);
      else if (path.startsWith('/tile/')) reply = getTile(path.slice(1));
      else throw new HttpFailure('not_found', `no endpoint ${path}`);
    } catch (error) {
      const failure = failureFor(error);
      outcome = failure.outcome;
      retryAfter = failure.retryAfterSeconds;
      reply = json({ error_code: failure.outcome, error_message: failure.message });
    }
    requests.inc({ endpoint, outcome });
    const body = typeof reply.body === 'string' ? Buffer.from(reply.body) : reply.body;
    const headers: Record<string, string | number> = {
      'content-type': reply.contentType,
      'content-length': body.length,
    };
    if (reply.cacheControl !== undefined) headers['cache-control'] = reply.cacheControl;
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    // A body we did not read would be parsed as the next request: close the connection.
    if (outcome === 'too_large') headers.connection = 'close';
    response.writeHead(STATUS[outcome], headers);
    response.end(request.method === 'HEAD' ? undefined : body);
  };

  const limits = httpLimits(options.limits);
  const server: Server = createServer(
    { maxHeaderSize: MAX_HEADER_BYTES, ...httpLimitServerOptions(limits) },
    (request, response) => {
      const target = request.url ?? '';
      const queryAt = target.indexOf('?');
      const path = queryAt < 0 ? target : target.slice(0, queryAt);
      if (
        options.ocsp !== undefined &&
        target.length <= MAX_REQUEST_TARGET &&
        isOcspRequest(request.method, path)
      ) {
        serveOcsp(request, response, path, options.ocsp).then(
          (outcome) => requests.inc({ endpoint: 'ocsp', outcome }),
          () => {
            requests.inc({ endpoint: 'ocsp', outcome: 'error' });
            if (!response.headersSent) response.writeHead(500);
            response.end();
          },
        );
        return;
      }
      try {
        handle(request, response);
      } catch {
        if (!response.headersSent) response.writeHead(500);
        response.end();
      }
    },
  );
  // Malformed HTTP, an oversized header block or a request not in on time: 400, 431 or 408.
  applyHttpLimits(server, limits, (outcome) => requests.inc({ endpoint: 'unknown', outcome }));
  await listenKeepingErrors(server, options.port, options.host);
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${host}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
