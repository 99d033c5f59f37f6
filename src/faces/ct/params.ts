/**
 * Query-string parsing for the RFC 6962 read API: every parameter is required once, decimal
 * numbers are canonical non-negative safe integers, hashes are 32-byte base64. Anything else is
 * a `BadParameter` the server turns into a 400, never an exception from deeper down.
 */
export class BadParameter extends Error {}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

function single(query: URLSearchParams, name: string): string {
  const values = query.getAll(name);
  if (values.length === 0) throw new BadParameter(`missing parameter "${name}"`);
  if (values.length > 1) throw new BadParameter(`parameter "${name}" given ${values.length} times`);
  return values[0] as string;
}

/** A non-negative safe integer in canonical decimal. */
export function integerParam(query: URLSearchParams, name: string): number {
  const text = single(query, name);
  if (text.length > 16 || !DECIMAL.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new BadParameter(`parameter "${name}" must be a non-negative decimal integer`);
  }
  return Number(text);
}

const BASE64 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * A 32-byte hash in standard base64. Clients often leave '+' unescaped in the query string,
 * where form decoding turns it into a space; a space cannot occur in base64, so it is put back.
 */
export function hashParam(query: URLSearchParams, name: string): Uint8Array {
  const text = single(query, name).replaceAll(' ', '+');
  if (!BASE64.test(text)) {
    throw new BadParameter(`parameter "${name}" must be a base64 SHA-256 hash (44 characters)`);
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== 32 || bytes.toString('base64') !== text) {
    throw new BadParameter(`parameter "${name}" is not canonical base64 of 32 bytes`);
  }
  return new Uint8Array(bytes);
}
