import { z } from 'zod';
import { HyperMeshError } from './error.js';

/**
 * Schema validation at every boundary (ARCHITECTURE.md "Canonical encoding"): untrusted input is
 * parsed into a typed value or rejected with a `SchemaError` that names the exact path and
 * problem. Nothing is coerced: a number where a string is expected is an error, not a string.
 * Boundary objects should use `z.strictObject` so unknown keys are rejected too.
 */
export enum SchemaErrorCode {
  INVALID = 'SCHEMA_INVALID',
}

/** One problem found in the input, with a printable path such as `names[2]`. */
export interface SchemaIssue {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

export class SchemaError extends HyperMeshError<SchemaErrorCode> {
  readonly issues: readonly SchemaIssue[];

  constructor(context: string, issues: readonly SchemaIssue[]) {
    super(SchemaErrorCode.INVALID, summarize(context, issues), { context, issues });
    this.issues = issues;
  }
}

/** At most this many issues are listed in the message; `detail.issues` keeps all of them. */
const ISSUES_IN_MESSAGE = 3;

/**
 * Parses `input` with `schema`. `context` names the thing being parsed (e.g. `request`) and
 * prefixes every path in the error: `request.names[2]: expected string, got number`.
 */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown, context: string): T {
  const result = schema.safeParse(input, { error: describeIssue });
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: formatPath(context, issue.path),
    code: issue.code,
    message: issue.message,
  }));
  throw new SchemaError(context, issues);
}

/** A byte string (`Uint8Array`, which includes Node's `Buffer`) with optional length bounds. */
export function bytes(bounds: { length?: number; min?: number; max?: number } = {}) {
  const { length, min, max } = bounds;
  for (const [name, value] of Object.entries(bounds)) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw new RangeError(`bytes(): ${name} must be a non-negative integer, got ${value}`);
    }
  }
  // z.custom rather than z.instanceof: the latter types the result as Uint8Array<ArrayBuffer>,
  // which views of other buffers (Buffer slices, subarrays) do not satisfy.
  const isBytes = z.custom<Uint8Array>((value) => value instanceof Uint8Array, {
    error: (issue) => `expected Uint8Array, got ${describeValue(issue.input)}`,
  });
  return isBytes.superRefine((value, ctx) => {
    const size = value.length;
    if (length !== undefined && size !== length) {
      ctx.addIssue({ code: 'custom', message: `expected ${length} bytes, got ${size}` });
    } else if (min !== undefined && size < min) {
      ctx.addIssue({ code: 'custom', message: `expected at least ${min} bytes, got ${size}` });
    } else if (max !== undefined && size > max) {
      ctx.addIssue({ code: 'custom', message: `expected at most ${max} bytes, got ${size}` });
    }
  });
}

/** A lowercase hex string encoding exactly `byteLength` bytes, e.g. `hexString(32)` for SHA-256. */
export function hexString(byteLength: number) {
  if (!(Number.isSafeInteger(byteLength) && byteLength >= 0)) {
    throw new RangeError(
      `hexString(): byteLength must be a non-negative integer, got ${byteLength}`,
    );
  }
  const pattern = new RegExp(`^[0-9a-f]{${2 * byteLength}}$`);
  const digits = 2 * byteLength;
  return z.string().regex(pattern, {
    error: (issue) => {
      const got =
        typeof issue.input === 'string' && issue.input.length === digits
          ? 'a character outside 0-9a-f'
          : describeValue(issue.input);
      return `expected ${byteLength} bytes as ${digits} lowercase hex digits, got ${got}`;
    },
  });
}

/** A non-negative safe integer (counts, indexes, sizes). */
export const uint = z.int().min(0);

/** A non-negative bigint (token amounts; never a float). */
export const bigintAmount = z.bigint().min(0n);

/** A string of 1..`max` UTF-16 code units. */
export function nonEmptyString(max: number) {
  return z.string().min(1).max(max);
}

function summarize(context: string, issues: readonly SchemaIssue[]): string {
  const shown = issues
    .slice(0, ISSUES_IN_MESSAGE)
    .map((issue) => `${issue.path}: ${issue.message}`);
  const more = issues.length - shown.length;
  if (shown.length === 0) return `${context}: invalid input`;
  return more > 0 ? `${shown.join('; ')}; and ${more} more` : shown.join('; ');
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function formatPath(context: string, path: readonly PropertyKey[]): string {
  let out = context;
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'symbol') out += `[${segment.toString()}]`;
    else if (IDENTIFIER.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** Names a value's type without echoing its content (input may be large or secret). */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? `number ${value}` : `${value}`;
    case 'bigint':
      return `bigint ${value}`;
    case 'string':
      return `string of length ${value.length}`;
    case 'object': {
      const name: unknown = Object.getPrototypeOf(value)?.constructor?.name;
      return typeof name === 'string' && name !== 'Object' ? name : 'object';
    }
    default:
      return typeof value;
  }
}

function describeBound(bound: number | bigint, origin: string): string {
  const plural = bound === 1 || bound === 1n ? '' : 's';
  if (origin === 'string') return `${bound} character${plural}`;
  if (origin === 'array' || origin === 'set') return `${bound} item${plural}`;
  return `${bound}`;
}

function describeSize(input: unknown, origin: string): string {
  if (origin === 'string' && typeof input === 'string') return `${input.length}`;
  if (origin === 'array' && Array.isArray(input)) return `${input.length}`;
  if (origin === 'set' && input instanceof Set) return `${input.size}`;
  return describeValue(input);
}

/**
 * Per-parse error map: turns zod's raw issues into short messages that say what was expected
 * and what arrived. Schema-level messages (e.g. from `bytes()`) take precedence over this map.
 */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected === 'int' ? 'integer' : issue.expected}, got ${describeValue(issue.input)}`;
    case 'too_small': {
      const relation = issue.exact
        ? 'exactly'
        : issue.inclusive === false
          ? 'more than'
          : 'at least';
      return `expected ${relation} ${describeBound(issue.minimum, issue.origin)}, got ${describeSize(issue.input, issue.origin)}`;
    }
    case 'too_big': {
      const relation = issue.exact
        ? 'exactly'
        : issue.inclusive === false
          ? 'less than'
          : 'at most';
      return `expected ${relation} ${describeBound(issue.maximum, issue.origin)}, got ${describeSize(issue.input, issue.origin)}`;
    }
    case 'invalid_format':
      return issue.format === 'regex' && issue.pattern !== undefined
        ? `expected a string matching ${issue.pattern}`
        : `expected ${issue.format} format`;
    case 'not_multiple_of':
      return `expected a multiple of ${issue.divisor}, got ${describeValue(issue.input)}`;
    case 'unrecognized_keys':
      return `unexpected ${issue.keys.length === 1 ? 'key' : 'keys'} ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`;
    case 'invalid_value':
      return `expected ${issue.values.length === 1 ? '' : 'one of '}${issue.values.map(showPrimitive).join(', ')}, got ${describeValue(issue.input)}`;
    case 'invalid_union':
      return `matches none of the allowed forms, got ${describeValue(issue.input)}`;
    default:
      return undefined;
  }
}

function showPrimitive(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  return String(value);
}
