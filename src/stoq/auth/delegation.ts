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
}

/**
 * Signs one delegation and hands it out until it nears expiry, then signs the next one. Renewal
 * starts in the background while the current delegation still has `renewBeforeMs` left, so
 * connections never wait for a FALCON signature except on the very first call (or after the
 * cache sat unused past expiry). Concurrent callers share one signing operation.
 */
export function createDelegationCache(options: DelegationCacheOptions): DelegationSource {
  const lifetimeMs = options.lifetimeMs ?? DEFAULT_DELEGATION_LIFETIME_MS;
  const renewBeforeMs = options.renewBeforeMs ?? Math.floor(lifetimeMs / 4);
  if (!(lifetimeMs > 0) || !(renewBeforeMs >= 0) || renewBeforeMs >= lifetimeMs) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      'delegation lifetime must be positive and exceed renewBeforeMs',
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

  return {
    current(now: Date): Promise<Delegation> {
      const remaining = current === null ? -1 : current.notAfter - now.getTime();
      if (current === null || remaining <= 0) return renew(now);
      if (remaining <= renewBeforeMs) {
        // Still valid: serve it, sign the successor in the background.
        renew(now).catch(() => undefined);
      }
      return Promise.resolve(current);
    },
  };
}
