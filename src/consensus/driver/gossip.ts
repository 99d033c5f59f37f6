import type { TendermintState } from '../state.js';
import type { ValidatorAddress } from '../types.js';
import type { GossipMessage } from './ports.js';

/**
 * Which consensus messages a driver sends again (the paper's gossip assumption, §2: every
 * message a correct validator sends is eventually received by every correct validator, which
 * real networks only approximate by re-sending). Latest round first: the engine accepts a
 * validator's messages only a few rounds above its own round (`maxFutureRounds`), and the latest
 * round's messages are the ones that make a lagging peer skip ahead (line 55).
 */

function latestRoundFirst(messages: { round: number; message: GossipMessage }[]): GossipMessage[] {
  return messages.sort((a, b) => b.round - a.round).map((entry) => entry.message);
}

/** Every proposal and vote the engine holds for its height: for a peer that just connected. */
export function heldMessages(state: TendermintState): GossipMessage[] {
  const messages: { round: number; message: GossipMessage }[] = [];
  for (const [round, proposals] of state.proposals) {
    for (const { proposal } of proposals) {
      messages.push({ round, message: { kind: 'proposal', proposal } });
    }
  }
  for (const sets of [state.prevotes, state.precommits]) {
    for (const [round, set] of sets) {
      for (const votes of set.votes.values()) {
        for (const vote of votes) messages.push({ round, message: { kind: 'vote', vote } });
      }
    }
  }
  return latestRoundFirst(messages);
}

/**
 * What a validator re-broadcasts while a height lasts: its own signed proposals and votes, and
 * the current round's proposals from others (a proposal lost on one link stalls the round for
 * that peer otherwise).
 */
export function rebroadcastMessages(
  state: TendermintState,
  self: ValidatorAddress | null,
): GossipMessage[] {
  const messages: { round: number; message: GossipMessage }[] = [];
  for (const { signed } of state.ownProposals.values()) {
    if (signed !== null)
      messages.push({ round: signed.round, message: { kind: 'proposal', proposal: signed } });
  }
  for (const { proposal } of state.proposals.get(state.round) ?? []) {
    if (proposal.proposer !== self) {
      messages.push({ round: proposal.round, message: { kind: 'proposal', proposal } });
    }
  }
  for (const { signed } of state.ownVotes.values()) {
    if (signed !== null)
      messages.push({ round: signed.round, message: { kind: 'vote', vote: signed } });
  }
  return latestRoundFirst(messages);
}
