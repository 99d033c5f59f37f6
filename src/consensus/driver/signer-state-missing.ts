import type { WalSigningHistory } from './wal-log.js';

/**
 * What a validator does when it starts with a chain behind it but without its signer state
 * (docs/consensus.md "Signer state"). A data directory rebuilt from a store backup or a copied
 * `store.sqlite` carries neither the signer-state file nor the consensus WAL, so nothing says
 * what this key signed before: signing at once could equivocate at the height it last voted at
 * (CometBFT's `double_sign_check_height` answers the same danger).
 *
 * - `'refuse'` (default): the driver does not start (`SIGNER_STATE_MISSING`).
 * - `{ waitHeights: N }`: the driver starts, and the key signs nothing at a height up to the
 *   highest height the node knows it stored or signed at plus N. That fence is written to the
 *   signer-state file first, so it holds across restarts until a signature above it replaces it.
 *   Safe when N exceeds the number of blocks the chain committed after the backup was taken.
 */
export type SignerStateMissingPolicy = 'refuse' | { readonly waitHeights: number };

/**
 * The most heights `waitHeights` may fence: a typo of a few more zeros would otherwise write a
 * fence that keeps the key from signing for good (undoing it means deleting the file).
 */
export const MAX_WAIT_HEIGHTS = 1_000_000;

export type SignerStateMissingDecision =
  /** Nothing to guard: a record exists, the node is no validator, or it has no past. */
  | { readonly kind: 'start' }
  /**
   * Start, and write the empty record (a fence at 0): the key has signed nothing here yet (a new
   * validator, or a follower), and from now on its directory says so. A follower that becomes a
   * validator can then restart before its first signature; a directory rebuilt from a snapshot
   * still lacks the file.
   */
  | { readonly kind: 'mark' }
  | { readonly kind: 'refuse'; readonly knownHeight: number }
  /** Persist a fence at `fenceHeight` before starting. */
  | { readonly kind: 'fence'; readonly knownHeight: number; readonly fenceHeight: number };

/**
 * Pure decision. `knownHeight` is the highest height the node's own files show it reached:
 * the store's committed height, the WAL's last checkpoint, or a WAL record of its own signature.
 * 0 means a brand-new validator, which has signed nothing.
 */
export function decideMissingSignerState(input: {
  readonly hasRecord: boolean;
  /** The key is in the validator set of the next height to decide or of the one after it. */
  readonly isValidator: boolean;
  readonly committedHeight: number;
  readonly wal: WalSigningHistory;
  readonly policy: SignerStateMissingPolicy;
}): SignerStateMissingDecision {
  if (input.hasRecord) return { kind: 'start' };
  // A WAL holding this key's own signatures says it signed here: never mark that "nothing".
  // Not a validator of the next two heights by the store it has (a store restored from before
  // the key joined), it starts as before, unmarked, and is checked again at its next start.
  if (!input.isValidator)
    return input.wal.signedHeight === null ? { kind: 'mark' } : { kind: 'start' };
  const knownHeight = Math.max(
    input.committedHeight,
    input.wal.checkpointHeight ?? 0,
    input.wal.signedHeight ?? 0,
  );
  if (knownHeight === 0) return { kind: 'mark' };
  if (input.policy === 'refuse') return { kind: 'refuse', knownHeight };
  return { kind: 'fence', knownHeight, fenceHeight: knownHeight + input.policy.waitHeights };
}
