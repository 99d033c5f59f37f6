import type { ValidatorUpdate } from '../consensus/app.js';
import type { EndBlockContext, ModuleState } from '../consensus/application/module.js';
import { EVIDENCE_MAX_AGE } from '../consensus/height-context.js';
import { MAX_TOTAL_VOTING_POWER } from '../consensus/validator-set.js';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { ed25519Address } from './address.js';
import { MAX_AMOUNT } from './amount.js';
import { governanceEndBlock } from './gov-end-block.js';
import { decodeTokenParams, encodeTokenParams } from './params.js';
import { BASIS_POINTS, MAX_SLASH_LOOKBACK, decodeStakingParams } from './staking-params.js';
import type { StakingParams } from './staking-params.js';
import {
  ACTIVE_SET_KEY,
  BONDED_KEY,
  JailReason,
  STAKING_PARAMS_KEY,
  UNBONDING_TOTAL_KEY,
  VALIDATORS_KEY,
  backingAt,
  compareAddresses,
  deleteValidator,
  encodeValidatorList,
  formatConsensusAddress,
  missedKey,
  parseConsensusAddress,
  readEpochHistory,
  readQueue,
  readUnbondingEntries,
  readValidator,
  readValidatorList,
  vacantRecordLifetime,
  withBacking,
  withVacancy,
  writeEpochHistory,
  writeQueue,
  writeUnbondingEntries,
  writeValidator,
} from './staking-state.js';
import type { EpochRegime, UnbondingEntry, ValidatorRecord } from './staking-state.js';
import { FEE_POOL_KEY, PARAMS_KEY, balanceKey, readAmount, writeAmount } from './state.js';

/**
 * Caesar's end of block (docs/caesar.md, "Epochs", "Rewards", "Slashing"), in this order:
 *
 * 1. slashing: each equivocation in the block burns `slashFraction` of the stake behind its
 *    validator's power at the offence, from the unbondings from it begun after the epoch that
 *    set that power first, the rest from its stake now, and jails it;
 * 2. downtime: `lastCommit` updates each validator's missed-commit window; more than
 *    `maxMissed` misses jails it (no slash);
 * 3. rewards: `blockReward` is minted and, with the fee pool, paid to the validators that
 *    signed the previous block's commit (by power), the proposer taking its bonus first;
 * 4. unbondings that complete at this height return to their delegators' balances;
 * 5. validator updates: jailed validators leave the set now (effective at height + 2); at an
 *    epoch height (a multiple of `epochBlocks`, or the first block after a change of it) the
 *    whole set is recomputed from stake, and at a multiple the records of validators vacant
 *    long enough that nothing can refer to them any more are removed;
 * 6. governance (gov-end-block.ts): proposals whose voting ends here are tallied, passed ones
 *    whose timelock ends here are applied, for the blocks after this one; a change of
 *    `epochBlocks` is recorded in the epoch history (`stk/epochs`) slashing reads.
 *
 * Without a staking section in the genesis (no `stk/params`) it does nothing.
 */

/** Re-exported: the bound on one slash's look-back, which bounds `epochBlocks` (899). */
export { MAX_SLASH_LOOKBACK };

/**
 * The last height at or below `height` whose end of block recomputed the validator set (0: none,
 * the genesis set), under `epochBlocks` and the regimes recorded at `stk/epochs` (`history`,
 * oldest first; empty while nothing was recorded). The power a validator votes with at height o
 * is the one set at the end of `lastEpochHeight(…, o − 2)`: updates returned by block h take
 * effect at h + 2 (consensus/height-context.ts), and between recomputations only removals happen.
 *
 * A regime says: from `from` on, the set was recomputed at the multiples of `epochBlocks`, and
 * the last recomputation before `from` (at or below `from − 1`) was `lastBefore`. So a height
 * in `[next.lastBefore, next.from − 1]` is answered by the next regime's `lastBefore`: that is
 * how a recomputation off the multiples (the block after a change of `epochBlocks`) and a
 * multiple that recomputed nothing (an empty selection) are recorded. `history` keeps the regime
 * covering every height evidence can still name; a height before its first regime is answered
 * from that regime's `lastBefore`.
 */
export function lastEpochHeight(
  epochBlocks: number,
  history: readonly EpochRegime[],
  height: number,
): number {
  if (height < 1) return 0;
  const regimes = history.length > 0 ? history : [{ from: 1, epochBlocks, lastBefore: 0 }];
  if (height < regimes[0]!.from) return regimes[0]!.lastBefore;
  let index = 0;
  for (const [i, entry] of regimes.entries()) if (entry.from <= height) index = i;
  const next = regimes[index + 1];
  if (next !== undefined && next.lastBefore <= height) return next.lastBefore;
  const regime = regimes[index]!;
  const candidate = height - (height % regime.epochBlocks);
  return candidate >= regime.from ? candidate : regime.lastBefore;
}

/**
 * `history` (the regimes under `epochBlocks` when empty) with `regime` as its last entry,
 * written at the end of block `height`: regimes from `regime.from` on are replaced, and those
 * before the one covering the oldest height evidence in a later block can name (offence − 2 ≥
 * height + 1 − EVIDENCE_MAX_AGE − 2) are dropped. At most two regimes are added per block, so
 * the history stays below 2 × (EVIDENCE_MAX_AGE + 2) + 1 entries.
 */
function withRegime(
  history: readonly EpochRegime[],
  epochBlocks: number,
  regime: EpochRegime,
  height: number,
): EpochRegime[] {
  const known = history.length > 0 ? history : [{ from: 1, epochBlocks, lastBefore: 0 }];
  const earlier = known.filter((entry) => entry.from < regime.from);
  const oldest = height + 1 - EVIDENCE_MAX_AGE - 2;
  let keep = 0;
  for (const [index, entry] of earlier.entries()) if (entry.from <= oldest) keep = index;
  return [...earlier.slice(keep), regime];
}

/**
 * The epoch history after governance changed `epochBlocks` from `before` to `after` at the end
 * of block `height` (this block's own set was recomputed, or not, under `before`): the block
 * after it, `height + 1`, recomputes the set whatever its height (`recomputesOffEpoch`), and the
 * multiples of `after` do from `height + 2` on. So no two recomputations are more than
 * max(before, after) heights apart: the last one under `before` is at most `before − 1` heights
 * before `height`, and the first multiple of `after` at most `after` heights after `height + 1`.
 */
export function nextEpochHistory(
  history: readonly EpochRegime[],
  before: number,
  after: number,
  height: number,
): EpochRegime[] {
  const regime = { from: height + 2, epochBlocks: after, lastBefore: height + 1 };
  return withRegime(history, before, regime, height);
}

/**
 * Whether block `height` recomputes the set although its height is no multiple of
 * `epochBlocks`: it is the first block after a change of `epochBlocks` (nextEpochHistory).
 */
export function recomputesOffEpoch(history: readonly EpochRegime[], height: number): boolean {
  return history.at(-1)?.lastBefore === height;
}

const bps = (amount: bigint, rate: number): bigint =>
  (amount * BigInt(rate)) / BigInt(BASIS_POINTS);

const hexKey = (address: Uint8Array): string => formatConsensusAddress(address);

/** Validator records read and changed (or removed) during one end of block, written back once. */
class Records {
  private readonly records = new Map<string, ValidatorRecord | undefined>();
  private readonly dirty = new Set<string>();
  private readonly removed = new Map<string, Uint8Array>();

  constructor(private readonly state: ModuleState) {}

  get(address: Uint8Array): ValidatorRecord | undefined {
    const id = hexKey(address);
    if (!this.records.has(id)) this.records.set(id, readValidator(this.state, address));
    return this.records.get(id);
  }

  set(address: Uint8Array, record: ValidatorRecord): void {
    const id = hexKey(address);
    this.records.set(id, record);
    this.dirty.add(id);
  }

  remove(address: Uint8Array): void {
    const id = hexKey(address);
    this.records.set(id, undefined);
    this.dirty.delete(id);
    this.removed.set(id, address);
  }

  flush(): void {
    for (const id of this.dirty) writeValidator(this.state, this.records.get(id)!);
    for (const address of this.removed.values()) deleteValidator(this.state, address);
  }
}

interface Ledger {
  readonly state: ModuleState;
  readonly params: StakingParams;
  readonly records: Records;
  readonly height: number;
  bonded: bigint;
  unbonding: bigint;
  minted: bigint;
  burnt: bigint;
}

function credit(state: ModuleState, account: Uint8Array, amount: bigint): void {
  if (amount === 0n) return;
  const key = balanceKey(account);
  writeAmount(state, key, readAmount(state, key) + amount);
}

function jail(ledger: Ledger, address: Uint8Array, record: ValidatorRecord, why: JailReason) {
  ledger.records.set(address, {
    ...record,
    jailed: why,
    jailedUntil: ledger.height + ledger.params.jailBlocks,
  });
  ledger.state.delete(missedKey(address));
}

/**
 * Burns `slashFraction` of the stake that backed the offender's power at the offence, as Cosmos
 * SDK x/staking `Slash` does (docs/caesar.md, "Slashing and jailing"), and never more:
 *
 *   due       = floor(B × slashFractionBps / 10,000), B = `backingAt(record, o)`: the power it
 *               voted with at offence height o × the `powerUnit` that power was computed with
 *   unbonding = `slashUnbondings`: each of its unbonding entries that still backed that power
 *               and are still waiting loses floor(amount × slashFractionBps / 10,000), scaled
 *               down so that together they lose at most `due` (below)
 *   bonded    = min(due − unbonding, tokens now), and while shares remain at most tokens − 1
 *
 * So stake delegated after the power was set does not raise the burn: it is measured on what
 * voted at o, not on the tokens now, and a late delegation unbonded before the evidence only
 * takes its part of `due` (the entries cannot tell it from a backer's). The bonded cut falls on
 * every share alike (a share is a fraction of the tokens), later delegations included, as in
 * Cosmos; it leaves a token while shares remain, so tokens and shares stay zero together (a
 * share of a validator without tokens has no price: a delegation to it would divide by zero).
 * Jails it and records the height (`slashedAt`).
 *
 * Not slashed: evidence of an offence at or before `slashedAt + 1` of its record (it was slashed
 * at `slashedAt` and voted with that power until `slashedAt + 1`: an earlier offence, or another
 * pair of votes for the same one, arriving after an unjail belongs to what was slashed), and
 * evidence against a validator jailed for equivocation that had no power at the offence, or
 * whose record has no `slashedAt` (jailed by a build from before the watermark, which cannot
 * tell the offence it was slashed for). A validator jailed for equivocation that still had power
 * at a later offence is slashed again: it keeps its power while removing it would empty the
 * set (`validatorUpdates`), and would otherwise equivocate for free. One block slashes a
 * validator at most once, for its earliest offence in the block that is not excluded (the widest
 * window).
 */
function slash(ledger: Ledger, ctx: EndBlockContext): void {
  const { params } = ledger;
  const offences = new Map<string, { address: Uint8Array; offence: number }>();
  for (const evidence of ctx.evidence) {
    const address = parseConsensusAddress(evidence.voteA.validator);
    if (address === undefined) continue;
    const record = ledger.records.get(address);
    if (record === undefined) continue;
    const offence = evidence.voteA.height;
    if (record.slashedAt !== undefined && offence <= record.slashedAt + 1) continue;
    if (
      record.jailed === JailReason.EQUIVOCATION &&
      (record.slashedAt === undefined || backingAt(record, offence, params.powerUnit) === 0n)
    ) {
      continue;
    }
    const id = hexKey(address);
    const earlier = offences.get(id);
    if (earlier === undefined || offence < earlier.offence) offences.set(id, { address, offence });
  }
  if (offences.size === 0) return;
  const history = readEpochHistory(ledger.state);
  for (const { address, offence } of offences.values()) {
    const record = ledger.records.get(address)!;
    const due = bps(backingAt(record, offence, params.powerUnit), params.slashFractionBps);
    const unbondingCut = slashUnbondings(ledger, history, address, offence, due);
    // The rest of what is due comes from the stake bonded now: never more than it holds, and
    // never its last token while shares remain.
    const rest = due - unbondingCut;
    const room = record.shares > 0n && record.tokens > 0n ? record.tokens - 1n : record.tokens;
    const cut = rest < room ? rest : room;
    ledger.bonded -= cut;
    ledger.unbonding -= unbondingCut;
    ledger.burnt += cut + unbondingCut;
    const slashed = { ...record, tokens: record.tokens - cut, slashedAt: ledger.height };
    jail(ledger, address, slashed, JailReason.EQUIVOCATION);
  }
}

/**
 * Cuts the offender's unbonding entries that backed its power at offence height o and returns
 * the total cut, at most `due`.
 *
 * The power it voted with at o was computed from its tokens at the end of block
 * E = lastEpochHeight(o − 2), so an entry created at a height c > E (after that computation,
 * the offence block and this block included) was still part of it: unbonding before
 * equivocating evades nothing (as in Cosmos SDK x/staking `Slash`, which slashes the stake that
 * backed the power at the infraction). An entry created at E or before was not. An entry still
 * waits when it completes at c + unbondingBlocks ≥ this height (one completing here is paid
 * after the slash); an entry paid out before this block is gone and is not looked for.
 *
 * Each entry's cut is floor(amount × slashFractionBps / 10,000). Stake delegated after E and
 * unbonded before the evidence also made such entries, though it never backed the power; the
 * entries do not say which stake they came from, so when their cuts add up to more than `due`
 * each is scaled to floor(cut × due / Σ cuts): together they lose at most `due`, each in
 * proportion to its cut (a floor per entry, so the order of the entries changes nothing).
 */
function slashUnbondings(
  ledger: Ledger,
  history: readonly EpochRegime[],
  address: Uint8Array,
  offence: number,
  due: bigint,
): bigint {
  const { state, params, height } = ledger;
  const powerSetAt = lastEpochHeight(params.epochBlocks, history, offence - 2);
  // Entries created at c in (powerSetAt, height] complete at c + unbondingBlocks; those that
  // completed before this height were paid out.
  const firstCreation = Math.max(
    powerSetAt + 1,
    height - params.unbondingBlocks,
    height - MAX_SLASH_LOOKBACK + 1,
  );
  const held = new Map<string, { delegator: Uint8Array; entries: UnbondingEntry[] }>();
  const hits: { entries: UnbondingEntry[]; index: number; cut: bigint }[] = [];
  let total = 0n;
  for (let created = firstCreation; created <= height; created++) {
    const completion = created + params.unbondingBlocks;
    for (const delegator of readQueue(state, completion)) {
      const id = toHex(delegator);
      let account = held.get(id);
      if (account === undefined) {
        account = { delegator, entries: [...readUnbondingEntries(state, delegator)] };
        held.set(id, account);
      }
      for (const [index, entry] of account.entries.entries()) {
        if (
          entry.completionHeight !== completion ||
          entry.creationHeight !== created ||
          compareAddresses(entry.validator, address) !== 0
        ) {
          continue;
        }
        const cut = bps(entry.amount, params.slashFractionBps);
        if (cut === 0n) continue;
        hits.push({ entries: account.entries, index, cut });
        total += cut;
      }
    }
  }
  if (total === 0n) return 0n;
  let taken = 0n;
  const changed = new Set<UnbondingEntry[]>();
  for (const { entries, index, cut } of hits) {
    const scaled = total > due ? (cut * due) / total : cut;
    if (scaled === 0n) continue;
    const entry = entries[index]!;
    entries[index] = { ...entry, amount: entry.amount - scaled };
    changed.add(entries);
    taken += scaled;
  }
  for (const { delegator, entries } of held.values()) {
    if (changed.has(entries)) writeUnbondingEntries(state, delegator, entries);
  }
  return taken;
}

function popcount(bytes: Uint8Array): number {
  let count = 0;
  for (let byte of bytes) {
    for (; byte !== 0; byte &= byte - 1) count++;
  }
  return count;
}

/**
 * The missed-commit window: bit (h − 1) mod signedWindow of a validator's bitmap says whether
 * it missed the commit of block h − 1. Only bits that change are written, so a validator that
 * always signs costs no write. A validator not jailed that misses more than `maxMissed` of the
 * window is jailed for downtime; its bitmap starts empty again when it joins the set or is
 * unjailed.
 */
function trackDowntime(ledger: Ledger, ctx: EndBlockContext): void {
  const { lastCommit } = ctx;
  if (lastCommit === undefined) return;
  const { state, params } = ledger;
  const index = lastCommit.height % params.signedWindow;
  const byte = index >> 3;
  const bit = 1 << (index & 7);
  for (const vote of lastCommit.votes) {
    const address = parseConsensusAddress(vote.validator);
    if (address === undefined) continue;
    const record = ledger.records.get(address);
    if (record === undefined || record.jailed !== JailReason.NONE) continue;
    const key = missedKey(address);
    const stored = state.get(key);
    const missedBefore = stored !== null && byte < stored.length && (stored[byte]! & bit) !== 0;
    if (vote.signed) {
      if (!missedBefore) continue;
      const bitmap = stored!.slice();
      bitmap[byte]! &= ~bit;
      if (bitmap.every((b) => b === 0)) state.delete(key);
      else state.set(key, bitmap);
      continue;
    }
    if (missedBefore) continue;
    const bitmap = new Uint8Array(Math.ceil(params.signedWindow / 8));
    if (stored !== null) bitmap.set(stored.subarray(0, bitmap.length));
    bitmap[byte]! |= bit;
    if (popcount(bitmap) > params.maxMissed) jail(ledger, address, record, JailReason.DOWNTIME);
    else state.set(key, bitmap);
  }
}

/**
 * Mints `blockReward` (capped so the supply stays below 2^128) and pays it with the whole fee
 * pool. With signers in `lastCommit`: the proposer's bonus (`proposerBonusBps`, floor) first,
 * the rest split among the signers by power (floor each), and the remainder of the split to the
 * proposer, or to the signer with the smallest address when the proposer gets nothing. Without
 * signers, the proposer takes it all. Only validators with a record that are not jailed take
 * part; if none does, nothing is minted and the fee pool waits for the next block. So the
 * amounts paid sum to exactly the minted amount plus the fee pool.
 *
 * A validator's reward: `commission` (floor) to its operator's balance, the rest added to its
 * bonded tokens, which raises the worth of every share (delegators, self-bond included, earn in
 * proportion, compounding). A validator without shares pays all of it to its operator.
 */
function distributeRewards(ledger: Ledger, ctx: EndBlockContext): void {
  const { state, params, records } = ledger;
  const eligible = (address: Uint8Array | undefined): ValidatorRecord | undefined => {
    if (address === undefined) return undefined;
    const record = records.get(address);
    return record !== undefined && record.jailed === JailReason.NONE ? record : undefined;
  };
  const proposer = parseConsensusAddress(ctx.proposer);
  const proposerEligible = eligible(proposer) !== undefined;
  const signers: { address: Uint8Array; power: bigint }[] = [];
  for (const vote of ctx.lastCommit?.votes ?? []) {
    if (!vote.signed || vote.power <= 0) continue;
    const address = parseConsensusAddress(vote.validator);
    if (eligible(address) !== undefined)
      signers.push({ address: address!, power: BigInt(vote.power) });
  }
  if (signers.length === 0 && !proposerEligible) return;
  const token = decodeTokenParams(state.get(PARAMS_KEY)!);
  const supply = token.supply + ledger.minted - ledger.burnt;
  const mint = params.blockReward < MAX_AMOUNT - supply ? params.blockReward : MAX_AMOUNT - supply;
  const pot = mint + readAmount(state, FEE_POOL_KEY);
  ledger.minted += mint;
  state.delete(FEE_POOL_KEY);
  if (pot === 0n) return;

  const payouts = new Map<string, { address: Uint8Array; amount: bigint }>();
  const add = (address: Uint8Array, amount: bigint) => {
    const id = hexKey(address);
    const entry = payouts.get(id);
    payouts.set(id, { address, amount: (entry?.amount ?? 0n) + amount });
  };
  if (signers.length === 0) {
    add(proposer!, pot);
  } else {
    const bonus = proposerEligible ? bps(pot, params.proposerBonusBps) : 0n;
    const rest = pot - bonus;
    const totalPower = signers.reduce((sum, signer) => sum + signer.power, 0n);
    let paid = 0n;
    for (const signer of signers) {
      const share = (rest * signer.power) / totalPower;
      paid += share;
      add(signer.address, share);
    }
    add(proposerEligible ? proposer! : signers[0]!.address, bonus + (rest - paid));
  }
  const ordered = [...payouts.values()].sort((a, b) => compareAddresses(a.address, b.address));
  for (const { address, amount } of ordered) {
    if (amount === 0n) continue;
    const record = records.get(address)!;
    const operator = ed25519Address(record.publicKey);
    if (record.shares === 0n) {
      credit(state, operator, amount);
      continue;
    }
    const commission = bps(amount, record.commissionBps);
    credit(state, operator, commission);
    records.set(address, { ...record, tokens: record.tokens + amount - commission });
    ledger.bonded += amount - commission;
  }
}

/** Pays out every unbonding entry that completes at this height. */
function matureUnbondings(ledger: Ledger): void {
  const { state, height } = ledger;
  const due = readQueue(state, height);
  for (const delegator of due) {
    const entries = readUnbondingEntries(state, delegator);
    let paid = 0n;
    const waiting = entries.filter((entry) => {
      if (entry.completionHeight > height) return true;
      paid += entry.amount;
      return false;
    });
    writeUnbondingEntries(state, delegator, waiting);
    credit(state, delegator, paid);
    ledger.unbonding -= paid;
  }
  if (due.length > 0) writeQueue(state, height, []);
}

/**
 * The set this module wants from the next epoch: validators not jailed with at least
 * `minValidatorStake` bonded and a power floor(tokens / powerUnit) of at least 1, by stake
 * (descending, ties by address ascending), the first `maxValidators`. Powers by address (hex).
 *
 * When their powers p sum to T > `MAX_TOTAL_VOTING_POWER` (C; the supply may reach 2^128, so
 * every `powerUnit` below 2^78 allows it), each is scaled to max(1, floor(p × (C − n) / T)) for
 * the n chosen: the sum is then at most (C − n) + n = C, every chosen validator stays in the set,
 * powers keep their order, and each is within n + 1 of its exact share p × C / T (n ≤ 10,000,
 * against C = 2^50).
 * Passing over the validators that do not fit instead would hand the power to the smaller ones,
 * down to one validator holding all of it.
 */
export function selectValidatorSet(
  params: StakingParams,
  records: readonly { address: Uint8Array; record: ValidatorRecord }[],
): Map<string, number> {
  const candidates = records
    .filter(
      ({ record }) =>
        record.jailed === JailReason.NONE &&
        record.tokens >= params.minValidatorStake &&
        record.tokens / params.powerUnit >= 1n,
    )
    .sort((a, b) =>
      a.record.tokens !== b.record.tokens
        ? a.record.tokens > b.record.tokens
          ? -1
          : 1
        : compareAddresses(a.address, b.address),
    );
  const chosen = candidates.slice(0, params.maxValidators).map(({ address, record }) => ({
    id: hexKey(address),
    power: record.tokens / params.powerUnit,
  }));
  const total = chosen.reduce((sum, { power }) => sum + power, 0n);
  const cap = BigInt(MAX_TOTAL_VOTING_POWER);
  const room = cap - BigInt(chosen.length);
  const powers = new Map<string, number>();
  for (const { id, power } of chosen) {
    const scaled = total <= cap ? power : (power * room) / total;
    powers.set(id, Number(scaled > 0n ? scaled : 1n));
  }
  return powers;
}

/**
 * The validator updates of this block: at an epoch height (a multiple of `epochBlocks`, or the
 * block after a change of it), the difference between the set consensus has from this module
 * (`stk/set`, the records' `power`) and `selectValidatorSet`; otherwise, and at an epoch whose
 * selection is empty, only the removal of every member of `stk/set` that is jailed (in this
 * block or before, when its removal had to wait). A change that would leave this module's set
 * empty is not made (consensus refuses an empty set): the set stays as it is, and the jailed
 * members in it leave in the first block that can remove them. An epoch whose selection is empty
 * records in the epoch history that it set no power (removals set none either).
 * New members carry their FALCON key and storage root, as consensus requires of an addition.
 */
function validatorUpdates(ledger: Ledger): ValidatorUpdate[] {
  const { state, params, height, records } = ledger;
  const active = readValidatorList(state, ACTIVE_SET_KEY);
  let target = new Map<string, number>();
  let touched = active;
  let recomputed = false;
  const history = readEpochHistory(state);
  if (height % params.epochBlocks === 0 || recomputesOffEpoch(history, height)) {
    const all = readValidatorList(state).map((address) => ({
      address,
      record: records.get(address)!,
    }));
    target = selectValidatorSet(params, all);
    if (target.size > 0) {
      recomputed = true;
      touched = all.map(({ address }) => address);
    } else {
      // Nothing recomputed: the powers in force stay those of the last recomputation, which
      // slashing must measure from (a regime from height + 1 whose lastBefore names it).
      const regime = {
        from: height + 1,
        epochBlocks: params.epochBlocks,
        lastBefore: lastEpochHeight(params.epochBlocks, history, height - 1),
      };
      writeEpochHistory(state, withRegime(history, params.epochBlocks, regime, height));
    }
  }
  if (!recomputed) {
    for (const address of active) {
      const record = records.get(address)!;
      if (record.jailed === JailReason.NONE) target.set(hexKey(address), record.power);
    }
  }
  if (target.size === 0) return [];
  const updates: ValidatorUpdate[] = [];
  const next: Uint8Array[] = [];
  for (const address of touched.sort(compareAddresses)) {
    const record = records.get(address)!;
    const power = target.get(hexKey(address)) ?? 0;
    if (power > 0) next.push(address);
    // The stake behind the power voting from height + 2: 0 out of the set; at a recomputation
    // the tokens now, down to a multiple of powerUnit (power × powerUnit unless the powers were
    // scaled down to the cap; a change of powerUnit changes it at an unchanged power);
    // otherwise unchanged.
    const before = backingAt(record, height + 2, params.powerUnit);
    const stake =
      power === 0
        ? 0n
        : recomputed
          ? (record.tokens / params.powerUnit) * params.powerUnit
          : before;
    if (power === record.power && stake === before) continue;
    const backed =
      stake === before ? record : withBacking(record, height + 2, stake, params.powerUnit, height);
    if (power === record.power) {
      records.set(address, backed);
      continue;
    }
    const joining = record.power === 0;
    updates.push({
      publicKey: record.publicKey,
      power,
      ...(joining ? { pqPublicKey: record.pqPublicKey, storageRoot: record.storageRoot } : {}),
    });
    records.set(address, withVacancy({ ...backed, power }, height));
    if (joining) state.delete(missedKey(address));
  }
  if (updates.length > 0) state.set(ACTIVE_SET_KEY, encodeValidatorList(next));
  return updates;
}

/**
 * At an epoch height, after the set is recomputed: removes from `vals` and deletes the record
 * (and missed-commit bitmap) of every validator vacant for at least
 * `vacantRecordLifetime(unbondingBlocks)` blocks (no tokens, no shares so no delegations, power
 * 0 and not in this module's set) whose jail, if any, is over. By then every unbonding entry from
 * it was paid out and no evidence of an offence by it can still be included, so nothing refers
 * to the record. Without this, `vals` (at most `MAX_VALIDATOR_CANDIDATES`) could be filled for
 * good by validators created and fully unbonded.
 */
function removeVacantValidators(ledger: Ledger): void {
  const { state, params, height, records } = ledger;
  if (height % params.epochBlocks !== 0) return;
  const lifetime = vacantRecordLifetime(params.unbondingBlocks);
  const active = readValidatorList(state, ACTIVE_SET_KEY);
  const all = readValidatorList(state);
  const kept = all.filter((address) => {
    const record = records.get(address)!;
    const removable =
      record.vacantSince !== undefined &&
      height >= record.vacantSince + lifetime &&
      record.tokens === 0n &&
      record.shares === 0n &&
      record.power === 0 &&
      (record.jailed === JailReason.NONE || height >= record.jailedUntil) &&
      !active.some((member) => compareAddresses(member, address) === 0);
    if (removable) records.remove(address);
    return !removable;
  });
  if (kept.length !== all.length) state.set(VALIDATORS_KEY, encodeValidatorList(kept));
}

/** Caesar's `endBlock` hook (see the file comment). */
export function caesarEndBlock(ctx: EndBlockContext): ValidatorUpdate[] {
  const { state } = ctx;
  const stored = state.get(STAKING_PARAMS_KEY);
  if (stored === null) return [];
  const ledger: Ledger = {
    state,
    params: decodeStakingParams(stored),
    records: new Records(state),
    height: ctx.height,
    bonded: readAmount(state, BONDED_KEY),
    unbonding: readAmount(state, UNBONDING_TOTAL_KEY),
    minted: 0n,
    burnt: 0n,
  };
  slash(ledger, ctx);
  trackDowntime(ledger, ctx);
  distributeRewards(ledger, ctx);
  matureUnbondings(ledger);
  const updates = validatorUpdates(ledger);
  removeVacantValidators(ledger);
  ledger.records.flush();
  writeAmount(state, BONDED_KEY, ledger.bonded);
  writeAmount(state, UNBONDING_TOTAL_KEY, ledger.unbonding);
  if (ledger.minted !== ledger.burnt) {
    const token = decodeTokenParams(state.get(PARAMS_KEY)!);
    state.set(
      PARAMS_KEY,
      encodeTokenParams({ ...token, supply: token.supply + ledger.minted - ledger.burnt }),
    );
  }
  governanceEndBlock(state, ctx.height);
  const after = state.get(STAKING_PARAMS_KEY)!;
  if (!bytesEqual(after, stored)) {
    const { epochBlocks } = decodeStakingParams(after);
    if (epochBlocks !== ledger.params.epochBlocks) {
      const history = readEpochHistory(state);
      writeEpochHistory(
        state,
        nextEpochHistory(history, ledger.params.epochBlocks, epochBlocks, ctx.height),
      );
    }
  }
  return updates;
}
