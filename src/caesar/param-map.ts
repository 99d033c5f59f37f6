import type { z } from 'zod';
import { CaesarReader, amountItem, mapItem, uintItem } from './cbor.js';
import { CaesarError, CaesarStateError, CaesarStateErrorCode } from './errors.js';

/** A parameter set: named whole numbers and amounts. */
type Params = object;

/**
 * The stored form of a parameter set (staking, governance): a canonical CBOR map with every
 * field, amounts as in cbor.ts and whole numbers up to `maxUint`, checked against `schema` when
 * read. One codec for every parameter set, so they are stored and refused alike.
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
}): ParamMapCodec<P> {
  // Canonical CBOR order: shorter keys first, then bytewise (as `mapItem` writes).
  const fields = [...options.names].sort((a, b) =>
    a.length !== b.length ? a.length - b.length : a < b ? -1 : 1,
  );
  return {
    encode(params) {
      const items: Record<string, Uint8Array> = {};
      for (const name of fields) {
        const value = (params as Readonly<Record<string, number | bigint>>)[name] as
          number | bigint;
        items[name] = typeof value === 'bigint' ? amountItem(value) : uintItem(value);
      }
      return mapItem(items);
    },
    decode(value) {
      try {
        const reader = new CaesarReader(value, options.context);
        if (reader.readMapLength() !== fields.length) {
          reader.malformed(`expected the ${fields.length} fields ${fields.join(', ')}`);
        }
        const read: Record<string, number | bigint> = {};
        let previous: string | undefined;
        for (const expected of fields) {
          const key = reader.readKey(fields, previous);
          if (key !== expected) reader.malformed(`missing field ${JSON.stringify(expected)}`);
          previous = key;
          read[key] = options.amounts.has(key)
            ? reader.readAmount(key)
            : reader.readSmallUint(key, options.maxUint);
        }
        reader.end();
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
