import { z } from 'zod';
import { StoqError, StoqErrorCode } from './errors.js';
import type { SocketAddress } from './transport.js';

/**
 * Turns a peer or service name into the addresses to dial. Callers never hold addresses: the
 * table comes from configuration (`StaticResolver`), or from the service catalog with the
 * configuration as its bootstrap (`DiscoveryResolver`, src/node/discovery-resolver.ts, above STOQ).
 * The pool asks at every dial, so a resolver whose answers change is followed on the next one.
 */
export interface Resolver {
  /**
   * Addresses for `name`, in the order they should be tried; never empty. Rejects with a
   * `StoqError` of code NOT_FOUND for a name it does not know.
   */
  resolve(name: string): Promise<SocketAddress[]>;
}

export type ResolverTable = Readonly<Record<string, readonly SocketAddress[]>>;

const socketAddressSchema = z.strictObject({
  host: z.string().min(1).max(253),
  port: z.number().int().min(1).max(65_535),
});

const resolverTableSchema = z.record(
  z.string().min(1).max(253),
  z.array(socketAddressSchema).min(1),
);

/** A fixed name → addresses table from configuration, checked when it is loaded. */
export class StaticResolver implements Resolver {
  private readonly table: ReadonlyMap<string, readonly SocketAddress[]>;

  constructor(table: ResolverTable) {
    const parsed = resolverTableSchema.safeParse(table);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new StoqError(
        StoqErrorCode.INVALID_ARGUMENT,
        `invalid resolver table at ${issue?.path.map(String).join('.') ?? '(root)'}: ${issue?.message ?? 'invalid'}`,
        { path: issue?.path.map(String) ?? [] },
      );
    }
    this.table = new Map(
      Object.entries(parsed.data).map(([name, addresses]) => [
        name,
        Object.freeze(addresses.map((address) => Object.freeze({ ...address }))),
      ]),
    );
  }

  resolve(name: string): Promise<SocketAddress[]> {
    const addresses = this.table.get(name);
    if (!addresses) {
      return Promise.reject(
        new StoqError(
          StoqErrorCode.NOT_FOUND,
          `no addresses configured for ${JSON.stringify(name)}`,
          {
            name,
            reason: 'unknown-name',
          },
        ),
      );
    }
    return Promise.resolve([...addresses]);
  }
}
