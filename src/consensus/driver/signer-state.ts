import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
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
 *
 * The write is synchronous on purpose: it sits on the critical path of every proposal and vote,
 * and as a chain of asynchronous file operations each step waited for a turn of an event loop
 * busy with client transactions (a proposal left its proposer ~250 ms after it was built at
 * 200 tx/s, and validators timed out waiting for it). Done at once it blocks the loop for about
 * two `fsync`s (~0.5 ms on the project's VM), like the consensus WAL's appends.
 */

export const SIGNER_STATE_DOMAIN = 'hypermesh/consensus/signer-state/v1';

/** What was signed last: a vote (kept whole) or a proposal (its signature and valid round). */
export type SignedMessage =
  | { readonly kind: 'vote'; readonly vote: Vote }
  | { readonly kind: 'proposal'; readonly validRound: number; readonly signature: Uint8Array };

export type LastSigned = SignedRecord<SignedMessage>;

/**
 * A fence written instead of a last-signed record when a validator starts without its record
 * (`signerStateMissing: { waitHeights }`, signer-state-missing.ts): the key signs nothing at a
 * height up to `fenceHeight`. The first signature above it replaces the fence with its record.
 */
const fenceSchema = z.strictObject({
  domain: z.literal(SIGNER_STATE_DOMAIN),
  validator: addressSchema,
  /** 0: the empty record, nothing refused (the key has signed nothing here yet). */
  fenceHeight: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/** What the signer-state file holds: the last signature, or a fence when there is none yet. */
export type SignerRecord =
  | { readonly kind: 'signed'; readonly last: LastSigned }
  | { readonly kind: 'fence'; readonly fenceHeight: number };

const signedSchema = z
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

const fileSchema = z.union([signedSchema, fenceSchema]);

/**
 * Reads the last-signed record at `path`; null when there is none yet (no file, or a fence).
 * Throws like `readSignerRecord`.
 */
export async function readSignerState(path: string, validator: string): Promise<LastSigned | null> {
  const record = await readSignerRecord(path, validator);
  return record?.kind === 'signed' ? record.last : null;
}

/**
 * Reads the file at `path`; null when there is none. Throws `SIGNER_STATE_CORRUPT` for an
 * unreadable file and `SIGNER_STATE_FOREIGN` for another validator's.
 */
export async function readSignerRecord(
  path: string,
  validator: string,
): Promise<SignerRecord | null> {
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
  if ('fenceHeight' in file) return { kind: 'fence', fenceHeight: file.fenceHeight };
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
    kind: 'signed',
    last: {
      height: file.height,
      round: file.round,
      step: file.step,
      blockHash: file.blockHash,
      signed,
    },
  };
}

/** Replaces the record at `path` durably (see the module comment). */
export async function writeSignerState(
  path: string,
  validator: string,
  record: LastSigned,
): Promise<void> {
  replaceFile(
    path,
    encodeRecord({
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
    }),
  );
}

/** Writes a fence (`fenceSchema`) at `path` durably, replacing whatever was there. */
export function writeSignerFence(path: string, validator: string, fenceHeight: number): void {
  replaceFile(path, encodeRecord({ domain: SIGNER_STATE_DOMAIN, validator, fenceHeight }));
}

function replaceFile(path: string, content: Uint8Array): void {
  const temporary = `${path}.tmp`;
  try {
    const file = openSync(temporary, 'w', 0o600);
    try {
      let written = 0;
      while (written < content.length) {
        written += writeSync(file, content, written, content.length - written);
      }
      fsyncSync(file);
    } finally {
      closeSync(file);
    }
    renameSync(temporary, path);
    const directory = openSync(dirname(path), 'r');
    try {
      fsyncSync(directory);
    } finally {
      closeSync(directory);
    }
  } catch (error) {
    try {
      rmSync(temporary, { force: true });
    } catch {
      // The write failed already; the error below says why.
    }
    throw new DriverError(
      DriverErrorCode.SIGNER_STATE_WRITE_FAILED,
      `cannot persist the signer state ${path}: ${(error as Error).message}`,
      { path },
      { cause: error },
    );
  }
}
