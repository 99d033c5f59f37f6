import {
  ed25519Address,
  caesarInitialState,
  encodeTransfer,
  createCaesarModule,
} from '../../src/caesar/index.js';
import type { CaesarGenesis, TransferInput } from '../../src/caesar/index.js';
import { openNode, tx } from '../consensus/application/fixture.js';
import type { Sender, TestNode } from '../consensus/application/fixture.js';

/** The address of a test sender's key. */
export const addressOf = (sender: Sender): Uint8Array => ed25519Address(sender.publicKey);

/** A signed transfer from `sender` (its next sequence unless given). */
export function transfer(sender: Sender, input: TransferInput, sequence?: number): Uint8Array {
  return tx(sender, encodeTransfer(input), {
    module: 'caesar',
    ...(sequence === undefined ? {} : { sequence }),
  });
}

/** A signed Caesar transaction with a hand-made body. */
export function rawCaesarTx(sender: Sender, body: Uint8Array, sequence?: number): Uint8Array {
  return tx(sender, body, { module: 'caesar', ...(sequence === undefined ? {} : { sequence }) });
}

/** A node running the Caesar module (and nothing else) over a fresh store, from `genesis`. */
export function openCaesarNode(genesis: CaesarGenesis): Promise<TestNode> {
  return openNode({ modules: [createCaesarModule()], initialState: caesarInitialState(genesis) });
}

export const TOKEN = { name: 'Caesar test token', symbol: 'CSR', decimals: 6 } as const;

const decoder = new TextDecoder();
/** The module-relative text of a state key under `caesar/` (e.g. "bal/…" or "pool/fees"). */
export const keyText = (key: Uint8Array): string => decoder.decode(key);
