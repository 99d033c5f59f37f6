import { z } from 'zod';

/**
 * What restart-quic.test.ts and its child process (network-process.ts) say to each other: the
 * child's configuration (first stdin line), its commands, and the events it prints.
 */

const hex = z.string().regex(/^(?:[0-9a-f]{2})*$/);

const processConfig = z.strictObject({
  name: z.string(),
  /** 0 for any free port; the port of the previous run to restart in its place. */
  port: z.int().min(0).max(65_535),
  /** Certificate chain, leaf first, DER as hex. */
  chain: z.array(hex).min(1),
  /** Ed25519 transport key seed. */
  seed: hex,
  falcon: z.strictObject({ publicKey: hex, secretKey: hex }),
  roots: z.array(hex).min(1),
  peers: z.array(z.strictObject({ id: z.string(), address: z.string() })),
});
export type ProcessConfig = z.output<typeof processConfig>;

export function parseProcessConfig(value: unknown): ProcessConfig {
  return processConfig.parse(value);
}

export type ProcessCommand = { readonly cmd: 'broadcast'; readonly height: number };

const processEvent = z.discriminatedUnion('event', [
  z.strictObject({ event: z.literal('ready'), port: z.int() }),
  z.strictObject({ event: z.literal('connected'), peer: z.string() }),
  z.strictObject({
    event: z.literal('message'),
    peer: z.string(),
    kind: z.string(),
    height: z.int().optional(),
  }),
  z.strictObject({
    event: z.literal('log'),
    level: z.string(),
    message: z.string(),
    fields: z.record(z.string(), z.unknown()),
  }),
]);
export type ProcessEvent = z.output<typeof processEvent>;

export function parseProcessEvent(line: string): ProcessEvent {
  return processEvent.parse(JSON.parse(line));
}
