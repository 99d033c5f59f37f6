/**
 * Worker thread of the Caesar transfer pre-builder (prepareLoad with this file as its builder):
 * signs and stamps the transfers of its share of the senders, each sender's sequences from
 * `firstSequence` in order, and posts them back.
 */
import { CAESAR_MODULE_NAME } from '../../src/caesar/state.js';
import { encodeTransfer } from '../../src/caesar/transfer.js';
import { postBuiltBatch } from '../consensus/build-batch.js';
import { recipientOf, type TransferParams } from './transfer-plan.js';

postBuiltBatch((job, sender, sequence) => {
  const params = job.params as TransferParams;
  const to = params.addresses[recipientOf(sender.index, sequence, params.addresses.length)];
  if (to === undefined) throw new Error(`no address for the recipient of sender ${sender.index}`);
  return {
    module: CAESAR_MODULE_NAME,
    body: encodeTransfer({ to, amount: params.amount, fee: params.fee }),
  };
});
