import { randomBytes } from 'node:crypto';
import { bytesEqual } from '../../crypto/bytes.js';
import type { FalconBackend, FalconKeyPair } from '../../crypto/falcon.js';
import {
  X509Error,
  certificateEd25519Key,
  certificateFalconKey,
  certificateIdentity,
  parseCertificate,
  parseTrustRoots,
} from '../../crypto/x509.js';
import { StoqError, StoqErrorCode } from '../errors.js';
import type { Authenticator, PeerIdentity, Session } from '../identity.js';
import type { DelegatedSession } from '../session-expiry.js';
import type { StoqMetrics } from '../metrics.js';
import type { TransportConnection, TransportStream } from '../transport.js';
import { CertificateCache } from './certificate-cache.js';
import {
  createDelegationCache,
  DEFAULT_DELEGATION_LIFETIME_MS,
  type DelegationSource,
} from './delegation.js';
import {
  buildClientHello,
  buildClientProof,
  buildServerHello,
  checkClientHello,
  checkClientProof,
  checkServerHello,
  type LocalCredentials,
  type PeerCheckContext,
} from './exchange.js';
import { FrameReader, encodeFrame } from './framing.js';
import {
  AUTH_MODES,
  NONCE_BYTES,
  decodeAuthMessage,
  encodeAuthMessage,
  failureResult,
  successResult,
  type AuthMessage,
  type AuthMode,
  type AuthResult,
  type Delegation,
} from './messages.js';
import {
  checkRevocation,
  type CertifiedPeer,
  type IdentityCheck,
  type RevocationCheck,
  type TrustPolicy,
} from './peer.js';
import {
  AuthFailureReason,
  authFailure,
  failureOrigin,
  failureReason,
  limitRefusal,
} from './reasons.js';

/**
 * The STOQ authentication exchange over a transport connection (ARCHITECTURE.md "QUIC library";
 * protocol in docs/stoq-auth.md). The transport proved the peer's Ed25519 key; on the first
 * stream the dialer opens, both sides then show certificate chains that must verify to the
 * trust roots and name exactly that key, plus a FALCON-1024 proof: a fresh signature over both
 * nonces (`strict`) or a signed, expiring delegation to the transport key (`delegated`).
 * Nothing else on the connection is served before `authenticate` resolves.
 *
 * On failure the side that found the problem sends `Result {ok:false, reason}`, waits briefly
 * for the peer to read it and close (at most `lingerMs`), then closes the connection. Each
 * outcome is counted in `handshakes_total{transport, outcome}`.
 */

export const DEFAULT_AUTH_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_AUTH_MESSAGE_BYTES = 64 * 1024;
export const DEFAULT_AUTH_LINGER_MS = 1_000;
export const DEFAULT_CERTIFICATE_CACHE_SIZE = 1_024;

export interface LocalIdentityOptions {
  /** DER certificates, leaf first; the leaf names the transport's Ed25519 key. */
  readonly chain: readonly Uint8Array[];
  /** The FALCON-1024 key pair whose public half the leaf certifies. */
  readonly falcon: FalconKeyPair;
  readonly falconBackend: FalconBackend;
  /** Delegated mode: where delegations come from (default: a cache signing them as needed). */
  readonly delegation?: DelegationSource;
  /** Lifetime of delegations signed by the default cache (default 10 minutes). */
  readonly delegationLifetimeMs?: number;
}

export interface TrustOptions {
  /** DER trust roots (the cluster root CA). */
  readonly roots: readonly Uint8Array[];
  readonly revocation: RevocationCheck;
  /** Which identities the roots' CAs may vouch for (peer.ts `IdentityCheck`); default any. */
  readonly identityCheck?: IdentityCheck;
  /** The cluster peers must belong to; default the local certificate's cluster. */
  readonly cluster?: string;
  /** Clock for validity and delegation expiry; default the system clock. */
  readonly now?: () => Date;
}

export interface AuthenticatorOptions {
  readonly local: LocalIdentityOptions;
  readonly trust: TrustOptions;
  readonly mode: AuthMode;
  readonly metrics?: StoqMetrics;
  /** The whole exchange must finish within this; a stalled peer is cut off. Default 10 s. */
  readonly timeoutMs?: number;
  /** Largest handshake message accepted. Default 64 KiB. */
  readonly maxMessageBytes?: number;
  /** After sending a failing Result, how long to wait for the peer to close. Default 1 s. */
  readonly lingerMs?: number;
  /** Parsed certificates kept between handshakes. Default 1024; 0 disables the cache. */
  readonly certificateCacheSize?: number;
}

function invalidOption(message: string, cause?: unknown): StoqError {
  return new StoqError(
    StoqErrorCode.INVALID_ARGUMENT,
    message,
    {},
    cause === undefined ? {} : { cause },
  );
}

/**
 * Checks the local identity once, at configuration time: the leaf parses, names an identity,
 * holds an Ed25519 key, and certifies exactly `falcon.publicKey`.
 */
export function localCredentials(local: LocalIdentityOptions): LocalCredentials {
  const [leafDer] = local.chain;
  if (leafDer === undefined) throw invalidOption('the local certificate chain is empty');
  try {
    const leaf = parseCertificate(leafDer);
    const { uri } = certificateIdentity(leaf);
    const transportKey = certificateEd25519Key(leaf);
    if (!bytesEqual(certificateFalconKey(leaf), local.falcon.publicKey)) {
      throw invalidOption(
        'the local certificate certifies a different FALCON key than the one configured',
      );
    }
    return {
      chain: [...local.chain],
      leaf,
      uri,
      transportKey,
      falcon: local.falcon,
      backend: local.falconBackend,
    };
  } catch (error) {
    if (error instanceof X509Error)
      throw invalidOption(`the local certificate is unusable: ${error.message}`, error);
    throw error;
  }
}

/** What the caller of one exchange decides along the way. */
export interface AuthenticateOptions {
  /**
   * Listener side only: called as soon as the peer's identity is known and bound to the key the
   * transport handshake proved (its ClientHello passed: chain, URI, cluster, key binding,
   * revocation), before the listener signs or verifies anything with FALCON. Throwing refuses
   * the session as `admit` does, so a peer the listener would refuse anyway costs it no FALCON
   * work. It must not count the session: the exchange can still fail after it (that is
   * `admit`'s job).
   */
  readonly precheck?: (peer: PeerIdentity) => void;
  /**
   * Listener side only: called once the peer has proved who it is, before the listener confirms
   * the session. Throwing refuses the session and tells the peer why: an `authFailure` with
   * reason `connection_limit` reaches both sides as `RESOURCE_EXHAUSTED` (`limitRefusal`).
   * It runs synchronously, so a count it keeps cannot be overtaken by a concurrent exchange.
   */
  readonly admit?: (peer: PeerIdentity) => void;
}

/** An authenticator whose local certificate chain can be replaced while it runs. */
export interface RenewableAuthenticator extends Authenticator {
  authenticate(connection: TransportConnection, options?: AuthenticateOptions): Promise<Session>;
  /**
   * Presents `chain` (DER, leaf first) on handshakes that start from now on; exchanges already
   * running and sessions already open keep the chain they began with. The new leaf must pass
   * the checks the configured one passed and name the same identity (cluster, role and name)
   * and the same Ed25519 and FALCON keys: a renewed certificate, not another identity. Throws
   * `StoqError` INVALID_ARGUMENT otherwise, and the old chain stays in use.
   */
  replaceLocalChain(chain: readonly Uint8Array[]): void;
}

export function createAuthenticator(options: AuthenticatorOptions): RenewableAuthenticator {
  return new StoqAuthenticator(options);
}

/**
 * What a connection offers to hold an unauthenticated peer to the one stream the exchange runs
 * on (the TLS multiplexer has it; QUIC caps streams with its own transport parameters). A
 * listener holds every connection it authenticates, so a peer cannot open streams and fill
 * their windows before it has proved who it is.
 */
export interface AuthenticationGate {
  /** From now on, refuse every stream the peer opens after its first. */
  holdUntilAuthenticated(): void;
  /** The peer authenticated: let it open streams again. */
  authenticated(): void;
}

function authenticationGate(connection: TransportConnection): AuthenticationGate | null {
  const candidate = connection as Partial<AuthenticationGate>;
  return typeof candidate.holdUntilAuthenticated === 'function' &&
    typeof candidate.authenticated === 'function'
    ? (candidate as AuthenticationGate)
    : null;
}

/**
 * RFC 5705 exporter label and length of the channel binding a strict-mode proof signs (in the
 * style of RFC 9266's `EXPORTER-Channel-Binding`, with a label of our own so the value is
 * useless to any other protocol on the same session).
 */
export const CHANNEL_BINDING_LABEL = 'EXPORTER-hypermesh-stoq';
export const CHANNEL_BINDING_BYTES = 32;

/**
 * What a connection offers when its transport exposes a TLS exporter (the TLS multiplexer,
 * `tls/mux.ts`). The QUIC binding exposes none (docs/stoq-auth.md, "Channel binding").
 */
export interface KeyingMaterialExporter {
  exportKeyingMaterial(length: number, label: string, context: Uint8Array): Uint8Array;
}

/**
 * The channel binding of `connection`: the TLS exporter value where the transport has one,
 * otherwise empty bytes. A TLS connection without an exporter is refused rather than left
 * unbound.
 */
export function channelBinding(connection: TransportConnection): Uint8Array {
  const exporter = connection as Partial<KeyingMaterialExporter>;
  if (typeof exporter.exportKeyingMaterial !== 'function') {
    if (connection.kind === 'tls') {
      throw authFailure(
        AuthFailureReason.INTERNAL_ERROR,
        'this TLS connection offers no keying-material exporter for channel binding',
      );
    }
    return new Uint8Array(0);
  }
  const binding = exporter.exportKeyingMaterial(
    CHANNEL_BINDING_BYTES,
    CHANNEL_BINDING_LABEL,
    new Uint8Array(0),
  );
  if (binding.length !== CHANNEL_BINDING_BYTES) {
    throw authFailure(
      AuthFailureReason.INTERNAL_ERROR,
      `the transport exported ${binding.length} bytes of channel binding, not ${CHANNEL_BINDING_BYTES}`,
    );
  }
  return binding;
}

/** What an exchange leaves behind besides the peer. */
interface Attempt {
  /** The stream the exchange runs on, once it exists (for the failure path). */
  stream: TransportStream | null;
  /** Delegated mode: the end of the peer's checked delegation (ms since the epoch). */
  delegationNotAfter?: number;
}

class StoqAuthenticator implements RenewableAuthenticator {
  /** Replaced by `replaceLocalChain`; each exchange reads it once, when it starts. */
  private local: LocalCredentials;
  private readonly trust: TrustPolicy;
  private readonly now: () => Date;
  private readonly mode: AuthMode;
  private readonly metrics: StoqMetrics | undefined;
  private readonly timeoutMs: number;
  private readonly maxMessageBytes: number;
  private readonly lingerMs: number;
  private readonly certificates: CertificateCache;
  private readonly delegations: DelegationSource | null;

  constructor(options: AuthenticatorOptions) {
    if (!AUTH_MODES.includes(options.mode))
      throw invalidOption(`mode must be one of ${AUTH_MODES.join(', ')}`);
    this.mode = options.mode;
    this.local = localCredentials(options.local);
    let roots;
    try {
      roots = parseTrustRoots(options.trust.roots);
    } catch (error) {
      throw invalidOption(`trust roots are unusable: ${(error as Error).message}`, error);
    }
    if (roots.length === 0) throw invalidOption('at least one trust root is needed');
    this.trust = {
      roots,
      cluster: options.trust.cluster ?? certificateIdentity(this.local.leaf).cluster,
      revocation: options.trust.revocation,
      ...(options.trust.identityCheck === undefined
        ? {}
        : { identityCheck: options.trust.identityCheck }),
    };
    this.now = options.trust.now ?? (() => new Date());
    this.metrics = options.metrics;
    this.timeoutMs = positive(options.timeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS, 'timeoutMs');
    this.maxMessageBytes = positive(
      options.maxMessageBytes ?? DEFAULT_MAX_AUTH_MESSAGE_BYTES,
      'maxMessageBytes',
    );
    this.lingerMs = Math.min(
      positive(options.lingerMs ?? DEFAULT_AUTH_LINGER_MS, 'lingerMs'),
      this.timeoutMs,
    );
    this.certificates = new CertificateCache(
      options.certificateCacheSize ?? DEFAULT_CERTIFICATE_CACHE_SIZE,
    );
    this.delegations =
      this.mode === 'delegated'
        ? (options.local.delegation ??
          createDelegationCache({
            backend: this.local.backend,
            falconSecretKey: this.local.falcon.secretKey,
            transportKey: this.local.transportKey,
            uri: this.local.uri,
            lifetimeMs: options.local.delegationLifetimeMs ?? DEFAULT_DELEGATION_LIFETIME_MS,
          }))
        : null;
  }

  replaceLocalChain(chain: readonly Uint8Array[]): void {
    const next = localCredentials({
      chain,
      falcon: this.local.falcon,
      falconBackend: this.local.backend,
    });
    const current = certificateIdentity(this.local.leaf);
    const renewed = certificateIdentity(next.leaf);
    if (!bytesEqual(next.transportKey, this.local.transportKey)) {
      throw invalidOption('the new local certificate certifies a different Ed25519 key');
    }
    if (
      renewed.cluster !== current.cluster ||
      renewed.role !== current.role ||
      renewed.name !== current.name
    ) {
      throw invalidOption(
        `the new local certificate names ${renewed.uri}, not ${current.uri}: only a renewal of the same identity may replace it`,
      );
    }
    this.local = next;
  }

  async authenticate(
    connection: TransportConnection,
    options: AuthenticateOptions = {},
  ): Promise<Session> {
    const started = performance.now();
    const attempt: Attempt = { stream: null };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            authFailure(
              AuthFailureReason.TIMEOUT,
              `authentication did not finish within ${this.timeoutMs} ms`,
            ),
          ),
        this.timeoutMs,
      );
    });
    const exchange =
      connection.direction === 'outbound'
        ? this.dial(connection, attempt)
        : this.listen(connection, attempt, options);
    // After a timeout the exchange still settles (closing the connection fails its reads).
    exchange.catch(() => undefined);
    try {
      const { identity: peer, path } = await Promise.race([exchange, timedOut]);
      this.metrics?.handshakes.inc({ transport: connection.kind, outcome: 'ok' });
      this.metrics?.handshakeSeconds.observe(
        { transport: connection.kind },
        (performance.now() - started) / 1000,
      );
      if (attempt.delegationNotAfter === undefined) return { connection, peer, path };
      // The delegation, not the certificate, vouches for the transport key: it bounds the session.
      const session: DelegatedSession = {
        connection,
        peer,
        path,
        delegationNotAfter: new Date(attempt.delegationNotAfter),
      };
      return session;
    } catch (error) {
      clearTimeout(timer);
      const failure = asAuthFailure(error);
      const reason = failureReason(failure) as AuthFailureReason;
      this.metrics?.handshakes.inc({ transport: connection.kind, outcome: reason });
      if (
        failureOrigin(failure) === 'local' &&
        reason !== AuthFailureReason.TIMEOUT &&
        attempt.stream
      ) {
        await this.tellPeer(connection, attempt.stream, reason);
      }
      connection.close(`STOQ authentication failed: ${reason}`);
      throw limitRefusal(failure);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The dialer: ClientHello, check ServerHello, ClientProof, read Result. */
  private async dial(connection: TransportConnection, attempt: Attempt): Promise<CertifiedPeer> {
    const local = this.local;
    const binding = this.mode === 'strict' ? channelBinding(connection) : new Uint8Array(0);
    const stream = await connection.openStream();
    attempt.stream = stream;
    const reader = new FrameReader(stream, this.maxMessageBytes);
    const clientNonce = new Uint8Array(randomBytes(NONCE_BYTES));
    const delegation = await this.currentDelegation();
    await send(
      stream,
      buildClientHello({ mode: this.mode, nonce: clientNonce, local, ...delegation }),
    );

    const serverHello = expect(await receive(reader), 'server_hello');
    const server = await checkServerHello(serverHello, {
      ...this.checkContext(connection),
      clientNonce,
      local,
      channelBinding: binding,
    });
    if (this.mode === 'delegated') attempt.delegationNotAfter = serverHello.delegation?.notAfter;
    await send(
      stream,
      await buildClientProof({
        mode: this.mode,
        clientNonce,
        serverHello,
        server,
        local,
        channelBinding: binding,
      }),
    );

    const result = expect(await receive(reader), 'result');
    if (!result.ok) throw peerRejected(result);
    // The listener is done with the stream: a failure from here on is not sent to it.
    attempt.stream = null;
    await this.recheckRevocation(server);
    finishQuietly(stream);
    return server;
  }

  /** The listener: check ClientHello, ServerHello, check ClientProof, send Result. */
  private async listen(
    connection: TransportConnection,
    attempt: Attempt,
    { precheck, admit }: AuthenticateOptions,
  ): Promise<CertifiedPeer> {
    const local = this.local;
    const binding = this.mode === 'strict' ? channelBinding(connection) : new Uint8Array(0);
    const gate = authenticationGate(connection);
    gate?.holdUntilAuthenticated();
    const stream = await connection.acceptStream();
    if (stream === null) {
      throw authFailure(
        AuthFailureReason.PROTOCOL_ERROR,
        'the connection closed before the client hello',
      );
    }
    attempt.stream = stream;
    const reader = new FrameReader(stream, this.maxMessageBytes);
    const clientHello = expect(await receive(reader), 'client_hello');
    const client = await checkClientHello(clientHello, this.checkContext(connection));
    // The identity is now bound to the transport's proven key, so the caller can refuse it
    // before the ServerHello's FALCON signature and the ClientProof's verification.
    precheck?.(client.identity);
    if (this.mode === 'delegated') attempt.delegationNotAfter = clientHello.delegation?.notAfter;

    const serverNonce = new Uint8Array(randomBytes(NONCE_BYTES));
    const delegation = await this.currentDelegation();
    await send(
      stream,
      await buildServerHello({
        mode: this.mode,
        nonce: serverNonce,
        clientHello,
        client,
        local,
        ...delegation,
        channelBinding: binding,
      }),
    );

    const clientProof = expect(await receive(reader), 'client_proof');
    checkClientProof(clientProof, {
      mode: this.mode,
      clientNonce: clientHello.nonce,
      serverNonce,
      client,
      local,
      backend: local.backend,
      channelBinding: binding,
    });
    await this.recheckRevocation(client);
    admit?.(client.identity);
    // Before the Result: the dialer opens its next streams only once it has read it.
    gate?.authenticated();
    await send(stream, successResult());
    finishQuietly(stream);
    return client;
  }

  /**
   * The revocation check once more at the end of the exchange: the first ran with the peer's
   * hello, a FALCON signature and a round trip ago, and a revocation committed in between would
   * otherwise let the session open (StoqEndpoint also rechecks sessions still in handshake).
   */
  private async recheckRevocation(peer: CertifiedPeer): Promise<void> {
    await checkRevocation(peer.path, this.trust.revocation);
  }

  private checkContext(connection: TransportConnection): PeerCheckContext {
    return {
      mode: this.mode,
      trust: this.trust,
      now: this.now(),
      provenKey: connection.peerKey,
      backend: this.local.backend,
      parse: (der) => this.certificates.parse(der),
    };
  }

  private async currentDelegation(): Promise<{ delegation?: Delegation }> {
    if (this.delegations === null) return {};
    try {
      return { delegation: await this.delegations.current(this.now()) };
    } catch (error) {
      throw authFailure(
        AuthFailureReason.INTERNAL_ERROR,
        'could not obtain a delegation',
        {},
        { cause: error },
      );
    }
  }

  /** Sends the failing Result and gives the peer up to `lingerMs` to read it and close. */
  private async tellPeer(
    connection: TransportConnection,
    stream: TransportStream,
    reason: AuthFailureReason,
  ) {
    await sendFailureAndLinger(connection, async () => stream, reason, this.lingerMs);
  }
}

/**
 * Refuses `connection` without any authentication work (no certificate parsing, no FALCON):
 * answers the dialer's first stream with `Result {ok:false, reason}`, which its exchange reads
 * in place of the ServerHello, and closes the connection once the dialer has closed it or
 * `lingerMs` passed. A listener that is full uses it so a dialer learns why
 * (`connection_limit` → `RESOURCE_EXHAUSTED`) instead of seeing the exchange break off.
 */
export async function refuseConnection(
  connection: TransportConnection,
  reason: AuthFailureReason,
  lingerMs: number = DEFAULT_AUTH_LINGER_MS,
): Promise<void> {
  authenticationGate(connection)?.holdUntilAuthenticated();
  await sendFailureAndLinger(connection, () => connection.acceptStream(), reason, lingerMs);
  connection.close(`STOQ connection refused: ${reason}`);
}

/**
 * Writes `Result {ok:false, reason}` on the stream `opened` gives (none: nothing to tell) and
 * waits until the peer closed the connection or `lingerMs` passed, whichever comes first.
 */
async function sendFailureAndLinger(
  connection: TransportConnection,
  opened: () => Promise<TransportStream | null>,
  reason: AuthFailureReason,
  lingerMs: number,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const linger = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, lingerMs);
  });
  const told = (async () => {
    const stream = await opened();
    if (stream === null) return;
    await send(stream, failureResult(reason));
    await stream.finish();
    await connection.closed;
  })().catch(() => undefined);
  await Promise.race([told, linger]);
  clearTimeout(timer);
}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw invalidOption(`${name} must be a positive integer`);
  return value;
}

async function send(stream: TransportStream, message: AuthMessage): Promise<void> {
  await stream.write(encodeFrame(encodeAuthMessage(message)));
}

async function receive(reader: FrameReader): Promise<AuthMessage> {
  return decodeAuthMessage(await reader.next());
}

type MessageOf<T extends AuthMessage['t']> = Extract<AuthMessage, { t: T }>;

/** The expected message, or the peer's failing Result turned into our error. */
function expect<T extends AuthMessage['t']>(message: AuthMessage, type: T): MessageOf<T> {
  if (message.t === 'result' && !message.ok && type !== 'result') throw peerRejected(message);
  if (message.t !== type) {
    throw authFailure(AuthFailureReason.PROTOCOL_ERROR, `expected ${type}, got ${message.t}`, {
      expected: type,
      received: message.t,
    });
  }
  return message as MessageOf<T>;
}

function peerRejected(result: Extract<AuthResult, { ok: false }>): StoqError {
  const message =
    result.reason === AuthFailureReason.CONNECTION_LIMIT
      ? 'the peer refused the session: it holds as many connections as it allows (connection_limit)'
      : `the peer rejected authentication: ${result.reason}`;
  return authFailure(result.reason, message, { origin: 'peer' });
}

function asAuthFailure(error: unknown): StoqError {
  if (failureReason(error) !== null) return error as StoqError;
  if (error instanceof StoqError) {
    // The transport failed under us (connection closed, stream reset): the exchange broke off.
    return authFailure(
      AuthFailureReason.PROTOCOL_ERROR,
      `authentication broke off: ${error.message}`,
      {},
      { cause: error },
    );
  }
  return authFailure(
    AuthFailureReason.INTERNAL_ERROR,
    `authentication failed locally: ${String(error)}`,
    {},
    { cause: error },
  );
}

/** Ends our side of the authentication stream and drains the peer's FIN in the background. */
function finishQuietly(stream: TransportStream): void {
  stream.finish().catch(() => undefined);
  void (async () => {
    try {
      while ((await stream.read()) !== null);
    } catch {
      // The stream was reset or the connection closed: nothing left to drain.
    }
  })();
}
