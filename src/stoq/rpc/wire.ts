import { z } from 'zod';
import { StoqError, StoqErrorCode } from '../errors.js';

/**
 * The STOQ RPC wire protocol, one call per transport stream (as gRPC maps one call to one
 * HTTP/2 stream):
 *
 * - The caller's first frame is the call header: `{method, kind, deadlineMs?, request?}`.
 *   `deadlineMs` is the remaining time budget, relative like gRPC's `grpc-timeout`, because
 *   the two peers' clocks need not agree.
 * - After it, each direction carries `[0, message]` frames. The server's direction always ends
 *   with one `[1, code, text, detail?]` status frame (`code` is `OK` or a `StoqErrorCode`), so a
 *   clean end can be told apart from a truncated one; then it finishes the stream.
 * - The caller keeps its sending side open until it has the status (unary and server-stream
 *   calls) so that a reset from it reaches the server as a cancellation; a finished sending
 *   side ends the inbound messages of a message stream.
 */

export const METHOD_KINDS = ['unary', 'serverStream', 'oneWay', 'messageStream'] as const;
export type MethodKind = (typeof METHOD_KINDS)[number];

/** Largest relative deadline a caller may send: the range of a Node timer (2^31 - 1 ms). */
export const MAX_DEADLINE_MS = 2_147_483_647;
/** Longest `service/method` name accepted on the wire. */
export const MAX_METHOD_NAME_LENGTH = 256;

export const MESSAGE_FRAME = 0;
export const STATUS_FRAME = 1;

export const OK = 'OK';
export type StatusCode = typeof OK | StoqErrorCode;

export interface CallHeader {
  readonly method: string;
  readonly kind: MethodKind;
  readonly deadlineMs?: number;
  readonly request?: unknown;
}

const callHeaderSchema = z.strictObject({
  method: z.string().min(1).max(MAX_METHOD_NAME_LENGTH),
  kind: z.enum(METHOD_KINDS),
  deadlineMs: z.number().int().min(1).max(MAX_DEADLINE_MS).optional(),
  request: z.unknown().optional(),
});

export function encodeCallHeader(header: CallHeader): Record<string, unknown> {
  const wire: Record<string, unknown> = { method: header.method, kind: header.kind };
  if (header.deadlineMs !== undefined) wire.deadlineMs = header.deadlineMs;
  if ('request' in header) wire.request = header.request;
  return wire;
}

/** Parses a decoded first frame; any other shape is MALFORMED_FRAME (reason `header`). */
export function parseCallHeader(value: unknown): CallHeader {
  const header = parseBySchema(
    callHeaderSchema,
    value,
    StoqErrorCode.MALFORMED_FRAME,
    'invalid call header',
    'header',
  );
  const hasRequest = Object.prototype.hasOwnProperty.call(value, 'request');
  if (hasRequest !== (header.kind !== 'messageStream')) {
    throw new StoqError(
      StoqErrorCode.MALFORMED_FRAME,
      hasRequest
        ? 'a messageStream call header carries no request'
        : `a ${header.kind} call header needs a request`,
      { reason: 'header' },
    );
  }
  return header;
}

export type WireFrame =
  | { readonly type: typeof MESSAGE_FRAME; readonly message: unknown }
  | { readonly type: typeof STATUS_FRAME; readonly status: WireStatus };

export interface WireStatus {
  readonly code: StatusCode;
  readonly message: string;
  readonly detail: Readonly<Record<string, unknown>>;
}

export function messageFrame(message: unknown): unknown[] {
  return [MESSAGE_FRAME, message];
}

export function statusFrame(status: WireStatus): unknown[] {
  return Object.keys(status.detail).length === 0
    ? [STATUS_FRAME, status.code, status.message]
    : [STATUS_FRAME, status.code, status.message, status.detail];
}

const STATUS_CODES = new Set<string>([OK, ...Object.values(StoqErrorCode)]);
const MAX_STATUS_TEXT = 1024;

/** Interprets a decoded frame after the header. Unknown shapes are MALFORMED_FRAME. */
export function parseWireFrame(value: unknown): WireFrame {
  if (Array.isArray(value)) {
    if (value.length === 2 && value[0] === MESSAGE_FRAME) {
      return { type: MESSAGE_FRAME, message: value[1] };
    }
    if ((value.length === 3 || value.length === 4) && value[0] === STATUS_FRAME) {
      const [, code, message, detail] = value as unknown[];
      if (
        typeof code === 'string' &&
        typeof message === 'string' &&
        (detail === undefined || isPlainRecord(detail))
      ) {
        return {
          type: STATUS_FRAME,
          status: remoteStatus(code, message, (detail ?? {}) as Record<string, unknown>),
        };
      }
    }
  }
  throw new StoqError(StoqErrorCode.MALFORMED_FRAME, 'frame is neither a message nor a status', {
    reason: 'frame-shape',
  });
}

/** A status from the peer. A code this version does not know is reported as INTERNAL. */
function remoteStatus(code: string, message: string, detail: Record<string, unknown>): WireStatus {
  const text = statusText(message);
  if (STATUS_CODES.has(code)) return { code: code as StatusCode, message: text, detail };
  return {
    code: StoqErrorCode.INTERNAL,
    message: `peer answered with unknown status ${code.slice(0, 64)}: ${text}`,
    detail: { remoteCode: code.slice(0, 64) },
  };
}

export function statusError(status: WireStatus): StoqError {
  const code = status.code === OK ? StoqErrorCode.INTERNAL : status.code;
  return new StoqError(code, status.message, { ...status.detail, remote: true });
}

/**
 * The part of an error's detail that may cross the wire: plain data (strings, finite numbers,
 * booleans, null, byte strings, and arrays and records of them, a few levels deep). Anything
 * else (undefined, functions, class instances such as a `cause`) is dropped, so a status always
 * encodes and decodes.
 */
export function wireDetail(detail: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return plainRecord(detail, 0);
}

const MAX_DETAIL_DEPTH = 4;

function plainRecord(
  record: Readonly<Record<string, unknown>>,
  depth: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    const plain = plainValue(value, depth);
    if (plain !== undefined) out[key] = plain;
  }
  return out;
}

function plainValue(value: unknown, depth: number): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'bigint' || value instanceof Uint8Array) return value;
  if (depth >= MAX_DETAIL_DEPTH) return undefined;
  if (Array.isArray(value))
    return value.map((item: unknown) => plainValue(item, depth + 1) ?? null);
  if (isPlainRecord(value) && Object.getPrototypeOf(value) === Object.prototype) {
    return plainRecord(value, depth + 1);
  }
  return undefined;
}

/** Status text as sent: bounded, like the text accepted from a peer. */
export function statusText(message: string): string {
  return message.length > MAX_STATUS_TEXT ? `${message.slice(0, MAX_STATUS_TEXT)}…` : message;
}

export function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array)
  );
}

export interface SchemaIssue {
  readonly path: string;
  readonly message: string;
}

type ZodIssues = readonly z.core.$ZodIssue[];

/** Issue paths as `a.b[2].c`, the form INVALID_ARGUMENT reports to the caller. */
export function issueList(issues: ZodIssues): SchemaIssue[] {
  return issues.slice(0, 16).map((issue) => ({
    path: formatPath(issue.path),
    message: issue.message,
  }));
}

/**
 * `value` as `schema` parses it, or a StoqError with `code`: `what` and the issues in the
 * message, the issue list (and `reason`, if given) in the detail.
 */
export function parseBySchema<T extends z.ZodType>(
  schema: T,
  value: unknown,
  code: StoqErrorCode,
  what: string,
  reason?: string,
): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues;
  throw new StoqError(code, `${what}: ${describeIssues(issues)}`, {
    ...(reason === undefined ? {} : { reason }),
    issues: issueList(issues),
  });
}

/** A call's request, checked by the caller before sending and by the server on receipt. */
export function parseRequest(schema: z.ZodType, request: unknown): unknown {
  return parseBySchema(
    schema,
    request,
    StoqErrorCode.INVALID_ARGUMENT,
    'request does not match its schema',
  );
}

export function describeIssues(issues: ZodIssues): string {
  return issueList(issues)
    .map((issue) => `${issue.path || '(root)'}: ${issue.message}`)
    .join('; ');
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}
