import { setImmediate as nextTurn } from 'node:timers/promises';
import { ConsensusError } from '../consensus/errors.js';
import type { GenesisDocument } from '../consensus/genesis.js';
import { MAX_VALIDATOR_UPDATE_SPAN, type NodeRpcClient } from '../consensus/net/index.js';
import { checkSetHandover } from '../consensus/set-handover.js';
import { decodeValidatorUpdates } from '../consensus/validator-updates.js';
import {
  applyValidatorUpdates,
  type ValidatorSet,
  type ValidatorSetUpdate,
} from '../consensus/validator-set.js';
import { pqSignatureVerifier } from '../consensus/verify.js';
import { defaultFalcon, type FalconBackend } from '../crypto/falcon.js';
import type { FetchedBlock } from './block-verify.js';
import { CliError } from './cli-error.js';

/**
 * The validator set of a height as a client without application state comes to trust it
 * (`hypermesh block verify`, the committed-root check of verified-root.ts). The set's hash in a
 * header covers the validators' keys and powers only, not proposer priorities
 * (validator-set.ts), and the updates block u returns take effect at height u + 2
 * (height-context.ts, docs/consensus.md):
 *
 *   set(1) = set(2) = genesis,   set(u + 2) = set(u + 1) with updates(u) applied.
 *
 * So the set of a height follows from a trusted set at an earlier height and the updates in
 * between alone, one application per block that returned updates: the cost is the number of
 * updates, not the number of heights. The updates come from the node, so each set they produce
 * is accepted only after the light-client check of `checkSetHandover` on the first block it
 * decides (Kwon, Buchman, "Tendermint light client", skipping verification).
 */

/** A set the client already trusts for `height`: the genesis set, or one a commit proved. */
export interface TrustedSetAnchor {
  readonly height: number;
  readonly validators: ValidatorSet;
}

/** One block's validator updates, as the node reported them, decoded. */
export interface BlockValidatorUpdates {
  readonly height: number;
  readonly updates: readonly ValidatorSetUpdate[];
}

/** How the client came to trust the set of a height, or why it could not. */
export type SetTrail =
  | {
      readonly ok: true;
      /** The set of the height. */
      readonly validators: ValidatorSet;
      /** Heights where the set changed after the anchor, each handover checked. */
      readonly changes: readonly number[];
      /** The non-empty updates from the anchor's height − 1 to height − 2, in height order. */
      readonly updates: readonly BlockValidatorUpdates[];
    }
  | {
      readonly ok: false;
      /** The height whose updates or handover block was refused. */
      readonly height: number;
      /** `updates-refused`, or the `SetHandoverRejection` of the handover block. */
      readonly reason: string;
      readonly message: string;
    };

export interface SetTrailRequest {
  readonly client: Pick<NodeRpcClient, 'validatorUpdates'>;
  readonly genesis: GenesisDocument;
  /** Where the trail starts; its height is at most `height`. */
  readonly from: TrustedSetAnchor;
  readonly height: number;
  /** The committed block of a height and its commit, fetched from the node. */
  readonly blockAt: (height: number) => Promise<FetchedBlock>;
  readonly falcon?: FalconBackend;
  /**
   * Time (ms) the whole trail may take, checked on `now` between requests and handovers
   * (default: none; each request then has 60 s).
   */
  readonly deadlineMs?: number;
  readonly now?: () => number;
  /** Called with each handover block that checked out, and the set it starts. */
  readonly onHandover?: (block: FetchedBlock, validators: ValidatorSet) => void;
}

/**
 * How far a client's clock and the validators' may be apart: a height is refused as impossible
 * only when it is beyond what the chain can reach this much later than the client's clock.
 */
export const HEIGHT_CLOCK_ALLOWANCE_MS = 24 * 60 * 60 * 1000;

/**
 * The highest height the chain can have reached at `now` (ms): block 1 carries the genesis time
 * and each later block's BFT time is at least its parent's + 1 ms (commit.ts `bftTime`), a time
 * between correct validators' clocks. A node naming a height beyond it is lying.
 */
export function highestPossibleHeight(genesis: GenesisDocument, now: number): number {
  return Math.max(1, Math.floor(now - genesis.genesisTime) + HEIGHT_CLOCK_ALLOWANCE_MS + 1);
}

function decodeUpdatesOf(height: number, bytes: Uint8Array): ValidatorSetUpdate[] {
  try {
    return decodeValidatorUpdates(bytes);
  } catch (error) {
    throw new CliError(
      `the node sent validator updates of block ${height} that do not decode: ${(error as Error).message}`,
      1,
    );
  }
}

/**
 * Most heights one trail walks (from its anchor's height − 1 to the target's − 2): 10,000
 * `validatorUpdates` windows. A trail is sequential, one round trip per window at least, so a
 * longer one needs more than 60 s (the committed-root check's deadline) at any round trip of
 * 6 ms or more; a chain at one block a second reaches it after 31 years. Past it, the heights a
 * node may claim under `highestPossibleHeight` (a block per millisecond) would let a lying node
 * keep one check asking for empty windows until its deadline.
 */
export const MAX_SET_TRAIL_HEIGHTS = 10_000 * MAX_VALIDATOR_UPDATE_SPAN;

/** Stops the node's paging once the trail has its answer (a refusal). */
class TrailSettled extends Error {
  constructor(readonly trail: SetTrail) {
    super('settled');
  }
}

/**
 * The set of `request.height`, starting from `request.from`: the updates of blocks
 * from.height − 1 .. height − 2 (`validatorUpdates`, one request per
 * `MAX_VALIDATOR_UPDATE_SPAN` heights, the event loop free between them), applied in order as
 * each page arrives (a page's bytes are not kept), and one block and commit check per block that
 * returned updates. The deadline is checked on every page, and the pages are counted: a node
 * continues a window only after a full page, and every entry of an honest page is a change
 * checked here, so more pages than windows + changes is a lying node's. Throws a `CliError` for
 * a trail longer than `MAX_SET_TRAIL_HEIGHTS`, updates that do not decode, too many pages and
 * when `deadlineMs` passes; rejects with `blockAt`'s and the client's errors.
 */
export async function followSetTrail(request: SetTrailRequest): Promise<SetTrail> {
  const { client, genesis, from, height, blockAt } = request;
  const now = request.now ?? Date.now;
  const started = now();
  const verifier = pqSignatureVerifier(request.falcon ?? defaultFalcon());
  const timeLeft = (): number => {
    if (request.deadlineMs === undefined) return 60_000;
    const left = started + request.deadlineMs - now();
    if (left <= 0) {
      throw new CliError(
        `the validator sets of heights ${from.height}..${height} were not derived within ${request.deadlineMs} ms`,
        1,
      );
    }
    return left;
  };
  let set = from.validators;
  const changes: number[] = [];
  const applied: BlockValidatorUpdates[] = [];
  // Updates of block u decide height u + 2: blocks from.height − 1 .. height − 2 matter.
  const start = Math.max(1, from.height - 1);
  const last = height - 2;
  if (last - start + 1 > MAX_SET_TRAIL_HEIGHTS) {
    throw new CliError(
      `the validator set of height ${height} would take the updates of ${last - start + 1} heights from ${start}, more than the ${MAX_SET_TRAIL_HEIGHTS} a check follows`,
      1,
    );
  }
  let windows = 0;
  let pages = 0;
  let done = start - 1;

  /** Applies one page's updates of heights first..windowEnd above `done`, in height order. */
  const takePage = async (
    entries: readonly { readonly height: number; readonly bytes: Uint8Array }[],
    first: number,
    windowEnd: number,
  ): Promise<SetTrail | undefined> => {
    timeLeft();
    const page = entries
      .filter((entry) => entry.height >= first && entry.height <= windowEnd && entry.height > done)
      .sort((a, b) => a.height - b.height);
    for (const entry of page) {
      const at = entry.height;
      if (at <= done) continue;
      done = at;
      const updates = decodeUpdatesOf(at, entry.bytes);
      if (updates.length === 0) continue;
      let next: ValidatorSet;
      try {
        next = applyValidatorUpdates(set, updates).validators;
      } catch (error) {
        if (!(error instanceof ConsensusError)) throw error;
        const message = `the validator updates the node reported for block ${at} cannot apply: ${error.message}`;
        return { ok: false, height: at, reason: 'updates-refused', message };
      }
      timeLeft();
      const decided = at + 2;
      const block = await blockAt(decided);
      const refusal = checkSetHandover({
        chainId: genesis.chainId,
        requirePq: genesis.consensus.requirePq,
        verifier,
        trusted: set,
        next,
        block: block.block,
        commit: block.commit,
      });
      if (refusal !== undefined) {
        const reason = String(refusal.detail.reason);
        return { ok: false, height: decided, reason, message: refusal.message };
      }
      request.onHandover?.(block, next);
      changes.push(decided);
      applied.push({ height: at, updates });
      set = next;
      await nextTurn();
    }
    return undefined;
  };

  for (let first = start; first <= last;) {
    const windowEnd = Math.min(last, first + MAX_VALIDATOR_UPDATE_SPAN - 1);
    windows++;
    try {
      const rest = await client.validatorUpdates(first, windowEnd, {
        deadlineMs: timeLeft(),
        onPage: async (entries) => {
          pages++;
          if (pages > windows + changes.length) {
            throw new CliError(
              `the node sent ${pages} pages of validator updates for ${windows} windows of heights and ${changes.length} set changes: it continued a window after a page that was not full of changes`,
              1,
            );
          }
          const refused = await takePage(entries, first, windowEnd);
          if (refused !== undefined) throw new TrailSettled(refused);
        },
      });
      // A client that does not page returns the window's updates at once.
      const refused = await takePage(rest, first, windowEnd);
      if (refused !== undefined) return refused;
    } catch (error) {
      if (error instanceof TrailSettled) return error.trail;
      throw error;
    }
    first = windowEnd + 1;
    await nextTurn();
  }
  return { ok: true, validators: set, changes, updates: applied };
}
