import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { bytes } from '../../codec/schema.js';
import { ED25519_SIGNATURE_BYTES } from '../../crypto/ed25519.js';
import type { SignedRecord } from '../double-sign-guard.js';
import type { Vote } from '../types.js';
import { DriverError, DriverErrorCode } from './errors.js';
import {
  addressSchema,
  decodeRecord,
  encodeRecord,
  hashSchema,
  heightSchema,
  roundSchema,
  voteRecord,
  voteSchema,
} from './records.js';

/**
 * The signer's last-signed record on disk (CometBFT's `priv_validator_state.json`): what the
 * double-sign guard compares every new request with. It is replaced atomically — written to a
 * temporary file, fsynced, renamed over the old one, the directory fsynced — before a signature
 * leaves the signer, so after any crash the file names the last thing this key signed.
 */

export const SIGNER_STATE_DOMAIN = 'hypermesh/consensus/signer-state/v1';

/** What was signed last: a vote (kept whole) or a proposal (its signature and valid round). */
export type SignedMessage =
  | { readonly kind: 'vote'; readonly vote: Vote }
  | { readonly kind: 'proposal'; readonly validRound: number; readonly signature: Uint8Array };

export type LastSigned = SignedRecord<SignedMessage>;

const fileSchema = z
  .strictObject({
    domain: z.literal(SIGNER_STATE_DOMAIN),
    validator: addressSchema,
    height: heightSchema,
    round: roundSchema,
    step: z.enum(['propose', 'prevote', 'precommit']),
    blockHash: hashSchema.nullable(),
    vote: voteSchema.optional(),
    proposal: z
      .strictObject({
        validRound: z.int().min(-1),
        signature: bytes({ length: ED25519_SIGNATURE_BYTES }),
      })
      .optional(),
  })
  .refine((file) => (file.step === 'propose') === (file.proposal !== undefined), {
    message: 'a proposal record carries the proposal, a vote record the vote',
  })
  .refine((file) => (file.step === 'propose') !== (file.vote !== undefined), {
    message: 'a vote record carries exactly one vote',
  });

/**
 * Reads the record at `path`; null when there is none yet. Throws `SIGNER_STATE_CORRUPT` for an
 * unreadable file and `SIGNER_STATE_FOREIGN` for another validator's.
 */
export async function readSignerState(path: string, validator: string): Promise<LastSigned | null> {
  let content: Uint8Array;
  try {
    content = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DriverError(
      DriverErrorCode.SIGNER_STATE_CORRUPT,
      `cannot read the signer state ${path}: ${(error as Error).message}`,
      { path },
      { cause: error },
    );
  }
  let file: z.infer<typeof fileSchema>;
  try {
    file = decodeRecord(fileSchema, content, 'signerState');
  } catch (error) {
    throw new DriverError(
      DriverErrorCode.SIGNER_STATE_CORRUPT,
      `the signer state ${path} is unreadable: ${(error as Error).message}`,
      { path },
      { cause: error },
    );
  }
  if (file.validator !== validator) {
    throw new DriverError(
      DriverErrorCode.SIGNER_STATE_FOREIGN,
      `the signer state ${path} belongs to validator ${file.validator}, not ${validator}`,
      { path, validator: file.validator },
    );
  }
  const signed: SignedMessage =
    file.vote !== undefined
      ? { kind: 'vote', vote: file.vote }
      : {
          kind: 'proposal',
          validRound: file.proposal!.validRound,
          signature: file.proposal!.signature,
        };
  if (signed.kind === 'vote') {
    const { vote } = signed;
    if (
      vote.type !== file.step ||
      vote.height !== file.height ||
      vote.round !== file.round ||
      vote.validator !== validator
    ) {
      throw new DriverError(
        DriverErrorCode.SIGNER_STATE_CORRUPT,
        `the signer state ${path} holds a vote that does not match its record`,
        { path },
      );
    }
  }
  return {
    height: file.height,
    round: file.round,
    step: file.step,
    blockHash: file.blockHash,
    signed,
  };
}

/** Replaces the record at `path` durably (see the module comment). */
export async function writeSignerState(
  path: string,
  validator: string,
  record: LastSigned,
): Promise<void> {
  const content = encodeRecord({
    domain: SIGNER_STATE_DOMAIN,
    validator,
    height: record.height,
    round: record.round,
    step: record.step,
    blockHash: record.blockHash,
    ...(record.signed.kind === 'vote'
      ? { vote: voteRecord(record.signed.vote) }
      : {
          proposal: {
            validRound: record.signed.validRound,
            signature: record.signed.signature,
          },
        }),
  });
  const temporary = `${path}.tmp`;
  try {
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    const directory = await open(dirname(path), 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new DriverError(
      DriverErrorCode.SIGNER_STATE_WRITE_FAILED,
      `cannot persist the signer state ${path}: ${(error as Error).message}`,
      { path },
      { cause: error },
    );
  }
}
