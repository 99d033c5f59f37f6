import type { z } from 'zod';
import { CaesarReader, amountItem, mapItem, uintItem } from './cbor.js';
import { CaesarError, CaesarStateError, CaesarStateErrorCode } from './errors.js';

/** A parameter set: named whole numbers and amounts. */
type Params = object;

/**
 * The stored form of a parameter set (staking, governance): a canonical CBOR map with every
 * field, amounts as in cbor.ts and whole numbers up to `maxUint`, checked against `schema` when
 * read. One codec for every parameter set, so they are stored and refused alike. A field added
 * after chains existed may be `omittedAtDefault`: absent from the map while it holds that value
 * (and refused as not canonical when written with it), so older stored sets keep their bytes.
 */
export interface ParamMapCodec<P extends Params> {
  encode(params: P): Uint8Array;
  /** Throws `CaesarStateError CORRUPT_VALUE` naming `what`. */
  decode(value: Uint8Array): P;
}

export function paramMapCodec<P extends Params>(options: {
  readonly names: readonly (keyof P & string)[];
  /** Fields holding amounts (bigint); the others are whole numbers. */
  readonly amounts: ReadonlySet<string>;
  readonly maxUint: number;
  readonly schema: z.ZodType<P>;
  /** Reader context (`stakingParams`) and the description in errors (`staking parameters`). */
  readonly context: string;
  readonly what: string;
  /** Fields absent from the stored map while they hold this value. */
  readonly omittedAtDefault?: Readonly<Partial<Record<keyof P & string, number | bigint>>>;
}): ParamMapCodec<P> {
  // Canonical CBOR order: shorter keys first, then bytewise (as `mapItem` writes).
  const fields = [...options.names].sort((a, b) =>
    a.length !== b.length ? a.length - b.length : a < b ? -1 : 1,
  );
  const defaults: Readonly<Record<string, number | bigint | undefined>> =
    options.omittedAtDefault ?? {};
  const required = fields.filter((name) => defaults[name] === undefined);
  return {
    encode(params) {
      const items: Record<string, Uint8Array> = {};
      for (const name of fields) {
        const value = (params as Readonly<Record<string, number | bigint>>)[name] as
          number | bigint;
        if (value === defaults[name]) continue;
        items[name] = typeof value === 'bigint' ? amountItem(value) : uintItem(value);
      }
      return mapItem(items);
    },
    decode(value) {
      try {
        const reader = new CaesarReader(value, options.context);
        const count = reader.readMapLength();
        if (count < required.length || count > fields.length) {
          reader.malformed(`expected the ${fields.length} fields ${fields.join(', ')}`);
        }
        const read: Record<string, number | bigint> = {};
        let previous: string | undefined;
        for (let i = 0; i < count; i++) {
          const key = reader.readKey(fields, previous);
          previous = key;
          read[key] = options.amounts.has(key)
            ? reader.readAmount(key)
            : reader.readSmallUint(key, options.maxUint);
          if (read[key] === defaults[key]) {
            reader.malformed(`field ${JSON.stringify(key)} written at its default (not canonical)`);
          }
        }
        reader.end();
        for (const name of fields) {
          if (read[name] !== undefined) continue;
          const fallback = defaults[name];
          if (fallback === undefined)
            return reader.malformed(`missing field ${JSON.stringify(name)}`);
          read[name] = fallback;
        }
        const checked = options.schema.safeParse(read);
        if (!checked.success) {
          return reader.malformed(checked.error.issues[0]?.message ?? 'out of range');
        }
        return checked.data;
      } catch (error) {
        if (!(error instanceof CaesarError)) throw error;
        throw new CaesarStateError(
          CaesarStateErrorCode.CORRUPT_VALUE,
          `not Caesar ${options.what}: ${error.message}`,
          {},
          { cause: error },
        );
      }
    },
  };
}
