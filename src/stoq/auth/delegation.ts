import { encodeCanonical } from '../../codec/cbor.js';
import { bytesEqual } from '../../crypto/bytes.js';
import { FALCON_ALGORITHM_ID, type FalconBackend } from '../../crypto/falcon.js';
import { StoqError, StoqErrorCode } from '../errors.js';
import type { Delegation } from './messages.js';
import { AuthFailureReason, authFailure } from './reasons.js';

/**
 * Delegated mode: instead of a FALCON signature per connection, the node's FALCON key signs once
 *
 *     {ctx: 'hypermesh-stoq-delegation-v1', alg, transportKey, uri, notAfter}
 *
 * and every connection only verifies that signature (FALCON verification is fast; signing is
 * ~8 ms). The trade-off, also in docs/stoq-auth.md: the post-quantum statement becomes "this
 * FALCON identity authorized this Ed25519 transport key until notAfter", not "this FALCON
 * identity is on this connection now". An attacker who breaks the Ed25519 key (e.g. with a
 * quantum computer) before notAfter can impersonate the node until then; keep the lifetime short
 * (minutes) to bound that window. Strict mode has no such window.
 */
export const DELEGATION_CONTEXT = 'hypermesh-stoq-delegation-v1';
/** Default lifetime of a delegation signed by `createDelegationCache`. */
export const DEFAULT_DELEGATION_LIFETIME_MS = 10 * 60_000;

export interface DelegationStatement {
  readonly transportKey: Uint8Array;
  readonly uri: string;
  /** Milliseconds since the Unix epoch. */
  readonly notAfter: number;
}

/** The exact bytes the FALCON key signs (deterministic CBOR, RFC 8949 §4.2). */
export function delegationPayload(statement: DelegationStatement): Uint8Array {
  return encodeCanonical({
    ctx: DELEGATION_CONTEXT,
    alg: FALCON_ALGORITHM_ID,
    transportKey: statement.transportKey,
    uri: statement.uri,
    notAfter: statement.notAfter,
  });
}

export interface CreateDelegationOptions {
  readonly backend: FalconBackend;
  readonly falconSecretKey: Uint8Array;
  readonly transportKey: Uint8Array;
  readonly uri: string;
  readonly notAfter: Date;
}

export async function createDelegation(options: CreateDelegationOptions): Promise<Delegation> {
  const notAfter = options.notAfter.getTime();
  if (options.transportKey.length !== 32 || !Number.isSafeInteger(notAfter) || notAfter < 0) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      'a delegation needs a 32-byte transport key and a valid notAfter',
    );
  }
  const statement = { transportKey: options.transportKey.slice(), uri: options.uri, notAfter };
  const signature = await options.backend.sign(
    delegationPayload(statement),
    options.falconSecretKey,
  );
  return { alg: FALCON_ALGORITHM_ID, ...statement, signature };
}

export interface CheckDelegationOptions {
  readonly backend: FalconBackend;
  /** The FALCON key from the peer's verified certificate. */
  readonly falconPublicKey: Uint8Array;
  /** The Ed25519 key the transport handshake proved. */
  readonly provenKey: Uint8Array;
  /** The identity URI from the peer's verified certificate. */
  readonly uri: string;
  readonly now: Date;
}

/** Throws `delegation_invalid` or `delegation_expired` unless the delegation holds. */
export function checkDelegation(
  delegation: Delegation | undefined,
  options: CheckDelegationOptions,
): void {
  if (delegation === undefined) {
    throw authFailure(AuthFailureReason.DELEGATION_INVALID, 'delegated mode needs a delegation');
  }
  if (
    !options.backend.verify(
      delegation.signature,
      delegationPayload(delegation),
      options.falconPublicKey,
    )
  ) {
    throw authFailure(
      AuthFailureReason.DELEGATION_INVALID,
      'delegation signature does not verify with the certified FALCON key',
    );
  }
  if (!bytesEqual(delegation.transportKey, options.provenKey)) {
    throw authFailure(
      AuthFailureReason.DELEGATION_INVALID,
      'delegation authorizes a different transport key',
    );
  }
  if (delegation.uri !== options.uri) {
    throw authFailure(
      AuthFailureReason.DELEGATION_INVALID,
      'delegation names a different identity',
      {
        delegated: delegation.uri,
        certified: options.uri,
      },
    );
  }
  if (options.now.getTime() > delegation.notAfter) {
    throw authFailure(AuthFailureReason.DELEGATION_EXPIRED, 'delegation has expired', {
      notAfter: new Date(delegation.notAfter).toISOString(),
    });
  }
}

/** Where an authenticator gets the delegation it presents. */
export interface DelegationSource {
  /** A delegation valid at `now`. */
  current(now: Date): Promise<Delegation>;
}

export interface DelegationCacheOptions extends Omit<CreateDelegationOptions, 'notAfter'> {
  /** Default `DEFAULT_DELEGATION_LIFETIME_MS`. */
  readonly lifetimeMs?: number;
  /** Re-sign once less than this remains (default a quarter of the lifetime). */
  readonly renewBeforeMs?: number;
  /**
   * Once less than `renewBeforeMs` remains, how long a caller waits for the successor before
   * it is handed the current delegation instead, if that is still valid. Default
   * `DEFAULT_DELEGATION_RENEWAL_WAIT_MS`.
   */
  readonly renewalWaitMs?: number;
}

/** Default bound on waiting for a renewal: many FALCON signatures, well inside a handshake. */
export const DEFAULT_DELEGATION_RENEWAL_WAIT_MS = 2_000;
/** Longest delay a Node timer takes (2^31 - 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Signs one delegation and hands it out until less than `renewBeforeMs` of it remains, then
 * signs the next one. The peer ends a delegated session when the delegation it was shown ends
 * (session-expiry.ts), so a caller in that last stretch waits for the successor rather than be
 * handed one that may end a millisecond later: at most `renewalWaitMs`, after which (or if
 * signing fails) it gets the current delegation while that is still valid. Only the first
 * callers of each renewal wait (one FALCON signature, ~8 ms), and concurrent callers share one
 * signing operation.
 */
export function createDelegationCache(options: DelegationCacheOptions): DelegationSource {
  const lifetimeMs = options.lifetimeMs ?? DEFAULT_DELEGATION_LIFETIME_MS;
  const renewBeforeMs = options.renewBeforeMs ?? Math.floor(lifetimeMs / 4);
  const renewalWaitMs = options.renewalWaitMs ?? DEFAULT_DELEGATION_RENEWAL_WAIT_MS;
  if (!(lifetimeMs > 0) || !(renewBeforeMs >= 0) || renewBeforeMs >= lifetimeMs) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      'delegation lifetime must be positive and exceed renewBeforeMs',
    );
  }
  if (!(renewalWaitMs >= 0) || renewalWaitMs > MAX_TIMER_MS) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `renewalWaitMs must be in 0..${MAX_TIMER_MS}`,
    );
  }
  let current: Delegation | null = null;
  let pending: Promise<Delegation> | null = null;

  const renew = (now: Date): Promise<Delegation> => {
    pending ??= createDelegation({
      ...options,
      notAfter: new Date(now.getTime() + lifetimeMs),
    }).then(
      (delegation) => {
        current = delegation;
        pending = null;
        return delegation;
      },
      (error: unknown) => {
        pending = null;
        throw error;
      },
    );
    return pending;
  };

  /**
   * The successor, or `held` if the successor takes longer than `renewalWaitMs` or fails while
   * `held` (which had `remainingMs` left when asked for) is still valid.
   */
  const successorOr = async (
    successor: Promise<Delegation>,
    held: Delegation,
    remainingMs: number,
  ): Promise<Delegation> => {
    const started = performance.now();
    const stillValid = (): boolean => performance.now() - started < remainingMs;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<null>((resolve) => {
      timer = setTimeout(resolve, renewalWaitMs, null);
    });
    try {
      const renewed = await Promise.race([successor, gaveUp]);
      if (renewed !== null) return renewed;
      // Slow signing: the current delegation while it lasts, else keep waiting for the successor.
      return stillValid() ? held : await successor;
    } catch (error) {
      if (stillValid()) return held;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    current(now: Date): Promise<Delegation> {
      const held = current;
      const remainingMs = held === null ? -1 : held.notAfter - now.getTime();
      if (held === null || remainingMs <= 0) return renew(now);
      if (remainingMs > renewBeforeMs) return Promise.resolve(held);
      return successorOr(renew(now), held, remainingMs);
    },
  };
}
