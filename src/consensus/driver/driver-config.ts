import { createPublicKey } from 'node:crypto';
import { ed25519RawPublicKey } from '../../crypto/ed25519.js';
import { assertFalconSecretKey, defaultFalcon } from '../../crypto/falcon.js';
import { MAX_BLOCK_EVIDENCE } from '../block.js';
import type { ConsensusConfig } from '../state.js';
import type { ValidatorAddress } from '../types.js';
import { validatorAddress } from '../validator-set.js';
import {
  ed25519SignatureVerifier,
  pqSignatureVerifier,
  type SignatureVerifier,
} from '../verify.js';
import type { ConsensusDriverOptions } from './driver-types.js';
import { DriverError, DriverErrorCode } from './errors.js';
import { defaultBufferedBytesPerPeer } from './future-messages.js';
import { MAX_WAIT_HEIGHTS } from './signer-state-missing.js';
import { memoizingVerifier } from './verifier.js';

export const DEFAULT_MAX_BUFFERED_PER_PEER = 256;
export const DEFAULT_SYNC_BATCH = 64;
export const DEFAULT_SYNC_IDLE_TIMEOUT_MS = 10_000;
export const DEFAULT_SYNC_PAGE_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_EVIDENCE = 16;
/** The longest delay `setTimeout` honours (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Upper bound on `idleBlockIntervalMs`: BFT time must keep moving on an idle chain. */
export const MAX_IDLE_BLOCK_INTERVAL_MS = 60_000;

/** The driver's options checked and resolved, with the engine's configuration. */
export interface DriverConfig {
  readonly engine: ConsensusConfig;
  readonly verifier: SignatureVerifier;
  readonly selfAddress: ValidatorAddress | null;
  readonly gossipIntervalMs: number;
  readonly syncBatchSize: number;
  readonly syncIdleTimeoutMs: number;
  readonly syncPageTimeoutMs: number;
  readonly maxBufferedPerPeer: number;
  /**
   * Approximate bytes of later-height messages one peer may park (future-messages.ts): two
   * proposals of the largest block genesis allows plus `maxBufferedPerPeer` of the largest votes.
   */
  readonly maxBufferedBytesPerPeer: number;
  readonly maxEvidencePerBlock: number;
  /** 0: idle pacing off. */
  readonly idleBlockIntervalMs: number;
}

function invalid(message: string, detail: Record<string, unknown>, cause?: unknown): DriverError {
  return new DriverError(
    DriverErrorCode.INVALID_OPTIONS,
    message,
    detail,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Checks the options (positive integers, an Ed25519 key, a FALCON-1024 secret key when the chain
 * requires post-quantum precommits) and builds the engine's configuration. The signature
 * verifier remembers valid signatures (verifier.ts) and checks FALCON-1024 with `falcon`, the
 * validator's own backend, or the fastest one available.
 */
export function resolveDriverConfig(options: ConsensusDriverOptions): DriverConfig {
  const { genesis } = options;
  const { consensus } = genesis;
  const resolved = {
    gossipIntervalMs: options.gossipIntervalMs ?? consensus.timeouts.proposeMs,
    syncBatchSize: options.syncBatchSize ?? DEFAULT_SYNC_BATCH,
    syncIdleTimeoutMs: options.syncIdleTimeoutMs ?? DEFAULT_SYNC_IDLE_TIMEOUT_MS,
    syncPageTimeoutMs: options.syncPageTimeoutMs ?? DEFAULT_SYNC_PAGE_TIMEOUT_MS,
    maxBufferedPerPeer: options.maxBufferedPerPeer ?? DEFAULT_MAX_BUFFERED_PER_PEER,
    maxEvidencePerBlock: options.maxEvidencePerBlock ?? DEFAULT_MAX_EVIDENCE,
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw invalid(`${name} must be a positive integer`, { name, value });
    }
  }
  // A proposal with more evidence than a valid block carries would be refused by every peer.
  if (resolved.maxEvidencePerBlock > MAX_BLOCK_EVIDENCE) {
    throw invalid(
      `maxEvidencePerBlock must be at most ${MAX_BLOCK_EVIDENCE} (MAX_BLOCK_EVIDENCE, the most evidence a valid block carries)`,
      { name: 'maxEvidencePerBlock', value: resolved.maxEvidencePerBlock },
    );
  }
  for (const name of ['syncIdleTimeoutMs', 'syncPageTimeoutMs'] as const) {
    // Node's timers fire at once for longer delays.
    if (resolved[name] > MAX_TIMER_MS) {
      throw invalid(`${name} must be at most ${MAX_TIMER_MS}`, { name, value: resolved[name] });
    }
  }
  const idleBlockIntervalMs = options.idleBlockIntervalMs ?? 0;
  if (
    !Number.isSafeInteger(idleBlockIntervalMs) ||
    idleBlockIntervalMs < 0 ||
    idleBlockIntervalMs > MAX_IDLE_BLOCK_INTERVAL_MS
  ) {
    throw invalid(
      `idleBlockIntervalMs must be an integer from 0 to ${MAX_IDLE_BLOCK_INTERVAL_MS}`,
      { name: 'idleBlockIntervalMs', value: idleBlockIntervalMs },
    );
  }
  if (options.testEquivocation !== undefined) {
    if (options.testEquivocation !== 'prevote' || options.self === null) {
      throw invalid('testEquivocation must be "prevote" and needs the validator keys (self)', {
        testEquivocation: options.testEquivocation,
      });
    }
  }
  const missing = options.signerStateMissing;
  if (
    missing !== undefined &&
    missing !== 'refuse' &&
    (typeof missing !== 'object' ||
      missing === null ||
      !Number.isSafeInteger(missing.waitHeights) ||
      missing.waitHeights < 1 ||
      missing.waitHeights > MAX_WAIT_HEIGHTS)
  ) {
    throw invalid(
      `signerStateMissing must be "refuse" or { waitHeights: 1 to ${MAX_WAIT_HEIGHTS} }`,
      {
        signerStateMissing: missing,
      },
    );
  }
  let selfAddress: ValidatorAddress | null = null;
  if (options.self !== null) {
    try {
      selfAddress = validatorAddress(ed25519RawPublicKey(createPublicKey(options.self.privateKey)));
    } catch (error) {
      throw invalid('self.privateKey is not an Ed25519 private key', {}, error);
    }
    if (consensus.requirePq) {
      try {
        assertFalconSecretKey(options.self.falconSecretKey);
      } catch (error) {
        throw invalid('self.falconSecretKey is not a FALCON-1024 secret key', {}, error);
      }
    }
  }
  const falcon =
    options.falcon ?? options.self?.falcon ?? (consensus.requirePq ? defaultFalcon() : undefined);
  const verifier = memoizingVerifier(
    falcon === undefined ? ed25519SignatureVerifier : pqSignatureVerifier(falcon),
  );
  return {
    ...resolved,
    maxBufferedBytesPerPeer: defaultBufferedBytesPerPeer(
      consensus.maxBlockBytes,
      consensus.maxBlockTxs,
      resolved.maxBufferedPerPeer,
    ),
    idleBlockIntervalMs,
    selfAddress,
    verifier,
    engine: {
      chainId: genesis.chainId,
      self: selfAddress,
      timeouts: consensus.timeouts,
      verifier,
      requirePq: consensus.requirePq,
    },
  };
}
