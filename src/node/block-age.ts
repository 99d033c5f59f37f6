/**
 * How old a committed block is, for the commands that state something "as of block H" (`cert
 * proof`, `cert verify --cluster`): a node that is behind, or answers an old height, would
 * state it from before a later revocation, so they print the block's time and age.
 */

/** An age for people: seconds, minutes, hours or days. */
function describeAge(ms: number): string {
  const seconds = Math.round(Math.abs(ms) / 1000);
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3_600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

/** "<ISO time>, <age> ago" of a block at `blockTime` seen at `now` (ms). */
export function blockTimeAndAge(blockTime: number, now: number): string {
  const age = now - blockTime;
  const relative = age >= 0 ? `${describeAge(age)} ago` : `${describeAge(age)} ahead of this clock`;
  return `${new Date(blockTime).toISOString()}, ${relative}`;
}
