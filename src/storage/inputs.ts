import { z } from 'zod';
import { bytes, parseInput, uint } from '../codec/schema.js';

/** Longest state key: keys are module-prefixed identifiers, not data. */
export const MAX_STATE_KEY_BYTES = 1024;
/** Largest state value (a certificate chain or an account fits with room to spare). */
export const MAX_STATE_VALUE_BYTES = 16 * 1024 * 1024;

const HASH_BYTES = 32;

const hash = bytes({ length: HASH_BYTES });

const blockSchema = z.strictObject({
  height: uint,
  hash,
  parentHash: hash,
  /** BFT time of the block, milliseconds since the Unix epoch. */
  timeMs: uint,
  /** The block exactly as consensus encoded it; the store does not interpret it. */
  bytes: bytes({ min: 1 }),
});

const keySchema = bytes({ min: 1, max: MAX_STATE_KEY_BYTES });

const stateChangeSchema = z.strictObject({
  key: keySchema,
  /** The new value, or null to delete the key. */
  value: bytes({ max: MAX_STATE_VALUE_BYTES }).nullable(),
});

const evidenceSchema = z.strictObject({
  hash,
  bytes: bytes({ min: 1 }),
});

/** Most accounts one receipt is indexed under. */
export const MAX_RECEIPT_ACCOUNTS = 256;
/** Longest account key in the account-history index. */
export const MAX_ACCOUNT_BYTES = 64;

const receiptSchema = z.strictObject({
  txHash: hash,
  /** Position of the transaction in its block. */
  index: uint,
  /** The receipt as consensus encoded it (opaque here). */
  bytes: bytes({ min: 1 }),
  /** The accounts whose history lists the transaction. */
  accounts: z.array(bytes({ min: 1, max: MAX_ACCOUNT_BYTES })).max(MAX_RECEIPT_ACCOUNTS),
});

const saveBlockSchema = z.strictObject({
  block: blockSchema,
  /** The quorum certificate that committed this block. */
  commit: bytes({ min: 1 }),
  evidence: z.array(evidenceSchema),
  stateChanges: z.array(stateChangeSchema),
  /** The state root the caller computed; saveBlock recomputes it and refuses a mismatch. */
  stateRoot: hash,
  /**
   * The validator updates the block's execution returned, encoded by consensus (opaque here);
   * absent when it returned none.
   */
  validatorUpdates: bytes({ min: 1 }).optional(),
  /** One receipt per transaction of the block, for receipts and account history. */
  receipts: z.array(receiptSchema).optional(),
});

const stateChangesSchema = z.array(stateChangeSchema);

const heightSchema = uint.optional();

export type BlockInput = z.infer<typeof blockSchema>;
export type StateChange = z.infer<typeof stateChangeSchema>;
export type EvidenceInput = z.infer<typeof evidenceSchema>;
export type ReceiptInput = z.infer<typeof receiptSchema>;
export type SaveBlockInput = z.infer<typeof saveBlockSchema>;

/**
 * The schemas are the definition of every input and produce its errors. The checks below accept
 * exactly what the schemas accept, by hand, because they run on hot paths (every state read,
 * every change of every block) where zod costs microseconds per value. A check returns the value
 * as the schema would (new objects and arrays holding the caller's byte arrays, each field read
 * once) or undefined; then the schema parses the input again and throws its `SchemaError`, so
 * errors are word for word zod's. `test/storage/inputs.test.ts` holds each check to its schema.
 */
export const inputSchemas = {
  saveBlock: saveBlockSchema,
  stateChanges: stateChangesSchema,
  stateKey: keySchema,
  height: heightSchema,
  uint,
  hash,
} as const;

type Fields = Readonly<Record<string, unknown>>;

/** `bytes({ min, max })`: a Uint8Array (Buffer included) of min..max bytes. */
function isBytes(value: unknown, min: number, max: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length >= min && value.length <= max;
}

/** `uint` (`z.int().min(0)`): a safe integer, not negative. */
function isUint(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** zod's object test: any non-null object that is not an array. */
function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `z.strictObject` refuses any enumerable key, own or inherited (`for...in`), it does not declare. */
function hasOnlyKeys(value: Fields, names: ReadonlySet<string>): boolean {
  for (const name in value) if (!names.has(name)) return false;
  return true;
}

/** `z.array(element)`: a new array of the checked elements, or undefined if one is refused. */
function checkArray<T>(input: unknown, element: (item: unknown) => T | undefined): T[] | undefined {
  if (!Array.isArray(input)) return undefined;
  const items: T[] = [];
  for (let i = 0; i < input.length; i++) {
    const item = element(input[i]);
    if (item === undefined) return undefined;
    items.push(item);
  }
  return items;
}

export function checkStateKey(input: unknown): Uint8Array | undefined {
  return isBytes(input, 1, MAX_STATE_KEY_BYTES) ? input : undefined;
}

export function checkUint(input: unknown): number | undefined {
  return isUint(input) ? input : undefined;
}

export function checkHash(input: unknown): Uint8Array | undefined {
  return isBytes(input, HASH_BYTES, HASH_BYTES) ? input : undefined;
}

function checkStateChange(input: unknown): StateChange | undefined {
  if (!isFields(input)) return undefined;
  const { key, value } = input;
  if (!isBytes(key, 1, MAX_STATE_KEY_BYTES)) return undefined;
  if (value !== null && !isBytes(value, 0, MAX_STATE_VALUE_BYTES)) return undefined;
  for (const name in input) if (name !== 'key' && name !== 'value') return undefined;
  return { key, value };
}

export function checkStateChanges(input: unknown): StateChange[] | undefined {
  return checkArray(input, checkStateChange);
}

const BLOCK_KEYS: ReadonlySet<string> = new Set(Object.keys(blockSchema.shape));

function checkBlock(input: unknown): BlockInput | undefined {
  if (!isFields(input)) return undefined;
  const { height, hash, parentHash, timeMs, bytes } = input;
  const valid =
    isUint(height) &&
    isBytes(hash, HASH_BYTES, HASH_BYTES) &&
    isBytes(parentHash, HASH_BYTES, HASH_BYTES) &&
    isUint(timeMs) &&
    isBytes(bytes, 1, Infinity) &&
    hasOnlyKeys(input, BLOCK_KEYS);
  return valid ? { height, hash, parentHash, timeMs, bytes } : undefined;
}

const EVIDENCE_KEYS: ReadonlySet<string> = new Set(Object.keys(evidenceSchema.shape));

function checkEvidence(input: unknown): EvidenceInput | undefined {
  if (!isFields(input)) return undefined;
  const { hash, bytes } = input;
  const valid =
    isBytes(hash, HASH_BYTES, HASH_BYTES) &&
    isBytes(bytes, 1, Infinity) &&
    hasOnlyKeys(input, EVIDENCE_KEYS);
  return valid ? { hash, bytes } : undefined;
}

const RECEIPT_KEYS: ReadonlySet<string> = new Set(Object.keys(receiptSchema.shape));

function checkAccount(input: unknown): Uint8Array | undefined {
  return isBytes(input, 1, MAX_ACCOUNT_BYTES) ? input : undefined;
}

function checkReceipt(input: unknown): ReceiptInput | undefined {
  if (!isFields(input)) return undefined;
  const { txHash, index, bytes, accounts } = input;
  if (
    !isBytes(txHash, HASH_BYTES, HASH_BYTES) ||
    !isUint(index) ||
    !isBytes(bytes, 1, Infinity) ||
    !Array.isArray(accounts) ||
    accounts.length > MAX_RECEIPT_ACCOUNTS
  ) {
    return undefined;
  }
  const checked = checkArray(accounts, checkAccount);
  if (checked === undefined || !hasOnlyKeys(input, RECEIPT_KEYS)) return undefined;
  return { txHash, index, bytes, accounts: checked };
}

const SAVE_BLOCK_KEYS: ReadonlySet<string> = new Set(Object.keys(saveBlockSchema.shape));

export function checkSaveBlockInput(input: unknown): SaveBlockInput | undefined {
  if (!isFields(input)) return undefined;
  // Every field is read once, in the schema's order, before the key check (as zod does).
  const fields = input;
  const block = checkBlock(fields.block);
  const commit = fields.commit;
  const evidence = checkArray(fields.evidence, checkEvidence);
  const stateChanges = checkStateChanges(fields.stateChanges);
  const stateRoot = fields.stateRoot;
  // An optional field: zod keeps it (even as undefined) when `in` finds it, own or inherited.
  const hasUpdates = 'validatorUpdates' in fields;
  const validatorUpdates = hasUpdates ? fields.validatorUpdates : undefined;
  const hasReceipts = 'receipts' in fields;
  const receipts =
    !hasReceipts || fields.receipts === undefined
      ? undefined
      : checkArray(fields.receipts, checkReceipt);
  const valid =
    block !== undefined &&
    isBytes(commit, 1, Infinity) &&
    evidence !== undefined &&
    stateChanges !== undefined &&
    isBytes(stateRoot, HASH_BYTES, HASH_BYTES) &&
    (validatorUpdates === undefined || isBytes(validatorUpdates, 1, Infinity)) &&
    (!hasReceipts || fields.receipts === undefined || receipts !== undefined) &&
    hasOnlyKeys(fields, SAVE_BLOCK_KEYS);
  if (!valid) return undefined;
  return {
    block,
    commit,
    evidence,
    stateChanges,
    stateRoot,
    ...(hasUpdates ? { validatorUpdates } : {}),
    ...(hasReceipts ? { receipts } : {}),
  };
}

export function parseSaveBlockInput(input: unknown): SaveBlockInput {
  return checkSaveBlockInput(input) ?? parseInput(saveBlockSchema, input, 'saveBlock');
}

export function parseStateChanges(input: unknown): StateChange[] {
  return checkStateChanges(input) ?? parseInput(stateChangesSchema, input, 'stateChanges');
}

export function parseStateKey(input: unknown): Uint8Array {
  return checkStateKey(input) ?? parseInput(keySchema, input, 'key');
}

/** An optional height argument (undefined means the latest). */
export function parseHeight(input: unknown): number | undefined {
  if (input === undefined) return undefined;
  return checkUint(input) ?? parseInput(heightSchema, input, 'height');
}

/** A required non-negative integer argument, named in the error. */
export function parseUint(input: unknown, name: string): number {
  return checkUint(input) ?? parseInput(uint, input, name);
}

export function parseHash(input: unknown): Uint8Array {
  return checkHash(input) ?? parseInput(hash, input, 'hash');
}

export function parseAccount(input: unknown): Uint8Array {
  return (
    checkAccount(input) ?? parseInput(bytes({ min: 1, max: MAX_ACCOUNT_BYTES }), input, 'account')
  );
}
