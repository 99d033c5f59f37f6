import type { Transition } from './transition.js';
import { exceedsOneThird, votingPower } from './validator-set.js';
import {
  hasQuorumAny,
  hasQuorumFor,
  NIL_KEY,
  quorumBlockKey,
  votesFor,
  type VoteSet,
} from './vote-set.js';

/**
 * The upon-rules of Algorithm 1 (Buchman, Kwon, Milosevic 2018), lines 22-56. Each returns
 * whether it fired. A rule that fires changes the state so that it is no longer enabled (a step
 * change, a "for the first time" mark, a round change or the decision), so running them until
 * none fires terminates.
 */
export function applyUponRules(t: Transition): void {
  for (;;) {
    if (t.state.step === 'commit') return;
    if (
      decide(t) ||
      prevoteOnProposal(t) ||
      prevoteOnValidRound(t) ||
      schedulePrevoteTimeout(t) ||
      lockOnPrevoteQuorum(t) ||
      precommitNilOnNilQuorum(t) ||
      schedulePrecommitTimeout(t) ||
      skipToRound(t)
    ) {
      continue;
    }
    return;
  }
}

/**
 * Lines 22-27: upon ⟨PROPOSAL, h_p, round_p, v, −1⟩ from proposer(h_p, round_p) while
 * step_p = propose. valid(v) must be known: the rule waits for the application's answer.
 */
function prevoteOnProposal(t: Transition): boolean {
  const s = t.state;
  if (s.step !== 'propose') return false;
  for (const received of t.proposalsIn(s.round)) {
    if (received.proposal.validRound !== -1) continue;
    const validity = t.validityOf(received.key);
    if (validity === undefined || validity === 'pending') continue;
    const acceptable = validity === 'valid' && (s.lockedRound === -1 || t.lockedOn(received.key)); // line 23
    t.castVote('prevote', acceptable ? received : null); // lines 24, 26
    t.setStep('prevote'); // line 27
    return true;
  }
  return false;
}

/**
 * Lines 28-33: upon ⟨PROPOSAL, h_p, round_p, v, vr⟩ from proposer(h_p, round_p) AND
 * 2f + 1 ⟨PREVOTE, h_p, vr, id(v)⟩ while step_p = propose ∧ (vr ≥ 0 ∧ vr < round_p).
 */
function prevoteOnValidRound(t: Transition): boolean {
  const s = t.state;
  if (s.step !== 'propose') return false;
  for (const received of t.proposalsIn(s.round)) {
    const vr = received.proposal.validRound;
    if (vr < 0 || vr >= s.round) continue;
    if (!hasQuorumFor(s.prevotes.get(vr), received.key, t.totalPower)) continue;
    const validity = t.validityOf(received.key);
    if (validity === undefined || validity === 'pending') continue;
    const acceptable = validity === 'valid' && (s.lockedRound <= vr || t.lockedOn(received.key)); // line 29
    t.castVote('prevote', acceptable ? received : null); // lines 30, 32
    t.setStep('prevote'); // line 33
    return true;
  }
  return false;
}

/** Lines 34-35: upon 2f + 1 ⟨PREVOTE, h_p, round_p, ∗⟩ while step_p = prevote, first time. */
function schedulePrevoteTimeout(t: Transition): boolean {
  const s = t.state;
  if (s.step !== 'prevote') return false;
  const mark = `34/${s.round}`;
  if (s.fired.has(mark)) return false;
  if (!hasQuorumAny(s.prevotes.get(s.round), t.totalPower)) return false;
  t.markFired(mark);
  t.scheduleTimeout('prevote');
  return true;
}

/**
 * Lines 36-43: upon ⟨PROPOSAL, h_p, round_p, v, ∗⟩ from proposer(h_p, round_p) AND
 * 2f + 1 ⟨PREVOTE, h_p, round_p, id(v)⟩ while valid(v) ∧ step_p ≥ prevote, first time.
 */
function lockOnPrevoteQuorum(t: Transition): boolean {
  const s = t.state;
  if (s.step !== 'prevote' && s.step !== 'precommit') return false;
  const mark = `36/${s.round}`;
  if (s.fired.has(mark)) return false;
  const key = quorumBlockKey(s.prevotes.get(s.round), t.totalPower);
  if (key === undefined) return false;
  const received = t.findProposal(s.round, key);
  if (received === undefined || t.validityOf(key) !== 'valid') return false;
  t.markFired(mark);
  const value = received.proposal.block;
  if (s.step === 'prevote') {
    t.lock(value, s.round); // lines 38-39
    t.castVote('precommit', received); // line 40
    t.setStep('precommit'); // line 41
  }
  t.setValidValue(value, s.round); // lines 42-43
  return true;
}

/** Lines 44-46: upon 2f + 1 ⟨PREVOTE, h_p, round_p, nil⟩ while step_p = prevote. */
function precommitNilOnNilQuorum(t: Transition): boolean {
  const s = t.state;
  if (s.step !== 'prevote') return false;
  if (!hasQuorumFor(s.prevotes.get(s.round), NIL_KEY, t.totalPower)) return false;
  t.castVote('precommit', null); // line 45
  t.setStep('precommit'); // line 46
  return true;
}

/** Lines 47-48: upon 2f + 1 ⟨PRECOMMIT, h_p, round_p, ∗⟩ for the first time. */
function schedulePrecommitTimeout(t: Transition): boolean {
  const s = t.state;
  const mark = `47/${s.round}`;
  if (s.fired.has(mark)) return false;
  if (!hasQuorumAny(s.precommits.get(s.round), t.totalPower)) return false;
  t.markFired(mark);
  t.scheduleTimeout('precommit');
  return true;
}

/**
 * Lines 49-54: upon ⟨PROPOSAL, h_p, r, v, ∗⟩ from proposer(h_p, r) AND
 * 2f + 1 ⟨PRECOMMIT, h_p, r, id(v)⟩ while decision_p[h_p] = nil — in any round r.
 * Lines 52-54 run when the driver sends `start-height`.
 */
function decide(t: Transition): boolean {
  const s = t.state;
  if (s.decision !== null) return false;
  for (const [round, precommits] of s.precommits) {
    const key = quorumBlockKey(precommits, t.totalPower);
    if (key === undefined) continue;
    const received = t.findProposal(round, key);
    if (received === undefined || t.validityOf(key) !== 'valid') continue; // line 50
    t.decide({
      block: received.proposal.block,
      commit: {
        height: s.height,
        round,
        blockHash: received.hash,
        precommits: votesFor(precommits, key),
      },
      proposal: received.proposal,
    }); // line 51
    return true;
  }
  return false;
}

/**
 * Lines 55-56: upon f + 1 ⟨∗, h_p, round, ∗, ∗⟩ with round > round_p: StartRound(round).
 * Senders of proposals, prevotes and precommits of a round count once each, by power; the
 * highest round that qualifies is taken.
 */
function skipToRound(t: Transition): boolean {
  const s = t.state;
  const senders = new Map<number, Set<string>>();
  const note = (round: number, validator: string) => {
    if (round <= s.round) return;
    let set = senders.get(round);
    if (set === undefined) senders.set(round, (set = new Set()));
    set.add(validator);
  };
  for (const sets of [s.prevotes, s.precommits]) {
    for (const [round, set] of sets as ReadonlyMap<number, VoteSet>) {
      if (round > s.round) for (const validator of set.votes.keys()) note(round, validator);
    }
  }
  for (const [round, proposals] of s.proposals) {
    for (const received of proposals) note(round, received.proposal.proposer);
  }
  const validators = s.context.schedule.validators;
  let target = -1;
  for (const [round, voters] of senders) {
    let power = 0;
    for (const validator of voters) power += votingPower(validators, validator);
    if (round > target && exceedsOneThird(power, t.totalPower)) target = round;
  }
  if (target < 0) return false;
  t.startRound(target);
  return true;
}
