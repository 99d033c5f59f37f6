/**
 * Who pays whom in the Caesar benchmark's load, as pure functions shared by the transfer builder
 * (a worker thread) and the ledger bookkeeping that checks the outcome.
 */
export interface TransferParams {
  /** Addresses of the step's senders, by sender index; the recipients are these same accounts. */
  readonly addresses: readonly Uint8Array[];
  /** Base units each transfer moves. */
  readonly amount: bigint;
  /** Base units each transfer pays to the fee pool. */
  readonly fee: bigint;
}

/**
 * The recipient of `sender`'s transfer with `sequence`: the other senders of the step in turn,
 * never the sender itself (self-transfers are refused with CAESAR_SELF_TRANSFER). So every
 * transfer goes to an existing account, and every sender also receives.
 */
export function recipientOf(sender: number, sequence: number, senders: number): number {
  if (senders < 2) throw new RangeError('transfers need at least two senders');
  return (sender + 1 + (sequence % (senders - 1))) % senders;
}

/**
 * What a sender must hold to send `transfers` transfers whatever order the others' payments to
 * it arrive in: it may receive nothing before its last transfer is executed.
 */
export function fundingFor(
  transfers: number,
  params: Pick<TransferParams, 'amount' | 'fee'>,
): bigint {
  return BigInt(transfers) * (params.amount + params.fee);
}
