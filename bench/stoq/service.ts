/**
 * The service the STOQ benchmark calls: a small unary echo, and a message-stream sink that
 * counts what arrives and answers the totals once the caller ends its side, so the caller's
 * clock stops only when the server has received everything.
 */
import { z } from 'zod';
import { defineService, messageStream, unary, type ServiceHandlers } from '../../src/stoq/index.js';

const everyone = ['validator', 'node', 'client'] as const;

/** Largest message body the sink accepts; the bulk test sends 64 KiB bodies. */
export const SINK_MAX_BODY_BYTES = 1024 * 1024;

export const benchService = defineService({
  name: 'bench.v1',
  methods: {
    echo: unary({
      request: z.strictObject({ data: z.instanceof(Uint8Array) }),
      response: z.strictObject({ data: z.instanceof(Uint8Array) }),
      allow: everyone,
    }),
    sink: messageStream({
      request: z.strictObject({
        body: z.instanceof(Uint8Array).refine((body) => body.length <= SINK_MAX_BODY_BYTES),
      }),
      response: z.strictObject({
        messages: z.number().int().nonnegative(),
        bytes: z.number().int().nonnegative(),
      }),
      allow: everyone,
    }),
  },
});

export type BenchService = typeof benchService;

export const benchHandlers: ServiceHandlers<BenchService> = {
  echo: (request) => ({ data: request.data }),
  sink: async (channel) => {
    let messages = 0;
    let bytes = 0;
    for await (const message of channel) {
      messages += 1;
      bytes += message.body.length;
    }
    channel.send({ messages, bytes });
  },
};
