import { z } from 'zod';
import { bytes } from '../../codec/schema.js';
import { defineService, messageStream, serverStream, unary, type Allow } from '../../stoq/index.js';
import { MAX_BLOCK_WIRE_BYTES, MAX_COMMIT_WIRE_BYTES, MAX_GOSSIP_WIRE_BYTES } from '../wire.js';

/**
 * The STOQ service consensus peers offer each other (`hypermesh.consensus.v1`):
 *
 * - `gossip`: one long-lived message stream per peer pair, opened by the peer whose id sorts
 *   first. Each message is one `encodeGossip` encoding; the accepting side's first message is
 *   `{welcome: true}`, so the opener knows the stream was accepted (not refused) before it
 *   reports the peer connected.
 * - `blocks`: block sync, `{from, to}` → committed blocks `from..to` in ascending order, at
 *   most `SYNC_MAX_BLOCKS_PER_REQUEST` per call; fewer when the server has fewer.
 * - `hello`: called by the accepting side of a pair (the id that sorts last) on the opener when it
 *   starts, so that a restarted node is reconnected at once instead of when its peers' QUIC idle
 *   timeout ends their dead connection. The answer says which gossip stream to the caller the
 *   opener has (its local number, and whether the welcome arrived); a caller that never accepted
 *   that stream calls again with `staleStream` set to it, and the opener drops that stream and
 *   its connection and redials (see network.ts, `greet`, and opener.ts, `answerHello`). A node
 *   that does not list the caller (it joined the cluster later, docs/stoq-auth.md "Consensus
 *   peers") answers `open: true`: it cannot dial the caller, so the caller opens the stream.
 *
 * `allow` is the network's check that the authenticated caller may be a consensus peer (a
 * configured one, or any `validator`/`node` certificate of the cluster when unlisted peers are
 * admitted); the definition is otherwise the same for client and server, so the wire names
 * never differ.
 */
export const CONSENSUS_SERVICE_NAME = 'hypermesh.consensus.v1';

/** Blocks one `blocks` call may ask for; larger ranges are paged by the client. */
export const SYNC_MAX_BLOCKS_PER_REQUEST = 500;

/**
 * STOQ message limit (`maxMessageBytes` of the endpoint) that carries the largest gossip
 * message (a proposal with a block of `MAX_BLOCK_WIRE_BYTES`) in its RPC envelope. With a
 * smaller limit, larger messages are dropped at the sender (`too_large`) and served blocks whose
 * block and commit together exceed it end the sync call with FRAME_TOO_LARGE.
 */
export const CONSENSUS_MAX_MESSAGE_BYTES = MAX_GOSSIP_WIRE_BYTES + 1024;

const gossipBytes = bytes({ min: 1, max: MAX_GOSSIP_WIRE_BYTES });
const welcome = z.strictObject({ welcome: z.literal(true) });
export type Welcome = z.output<typeof welcome>;

const height = z.int().min(1).max(Number.MAX_SAFE_INTEGER);

/** An opener's local number for one of its gossip streams (1, 2, … per peer and process). */
const streamNumber = z.int().min(1).max(Number.MAX_SAFE_INTEGER);

const helloRequest = z.strictObject({
  /** A stream of the opener's that the caller never accepted: it runs to a previous process. */
  staleStream: streamNumber.optional(),
});
export type HelloRequest = z.input<typeof helloRequest>;

const helloAnswer = z.strictObject({
  /** The opener's current gossip stream to the caller, or null while it has none. */
  stream: z.union([
    z.null(),
    z.strictObject({
      id: streamNumber,
      /** The caller's welcome arrived on it (as far as the opener knows, it carries gossip). */
      up: z.boolean(),
    }),
  ]),
  /**
   * The answering node does not list the caller, so it never dials it: the caller opens the
   * gossip stream itself (`stream` is then null).
   */
  open: z.literal(true).optional(),
});
export type HelloAnswer = z.output<typeof helloAnswer>;

const blocksRequest = z
  .strictObject({ from: height, to: height })
  .refine((range) => range.to >= range.from, {
    message: 'to must not be below from',
    path: ['to'],
  })
  .refine((range) => range.to - range.from < SYNC_MAX_BLOCKS_PER_REQUEST, {
    message: `at most ${SYNC_MAX_BLOCKS_PER_REQUEST} blocks per request`,
    path: ['to'],
  });

const syncedBlock = z.strictObject({
  height,
  block: bytes({ min: 1, max: MAX_BLOCK_WIRE_BYTES }),
  commit: bytes({ min: 1, max: MAX_COMMIT_WIRE_BYTES }),
});

export function defineConsensusPeerService(allow: Allow) {
  return defineService({
    name: CONSENSUS_SERVICE_NAME,
    methods: {
      gossip: messageStream({
        request: gossipBytes,
        response: z.union([gossipBytes, welcome]),
        allow,
      }),
      blocks: serverStream({ request: blocksRequest, response: syncedBlock, allow }),
      hello: unary({ request: helloRequest, response: helloAnswer, allow }),
    },
  });
}

export type ConsensusPeerService = ReturnType<typeof defineConsensusPeerService>;
