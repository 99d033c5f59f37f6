/**
 * The STOQ transport interface (js-libp2p style: small interfaces that several implementations
 * satisfy). Two implementations pass one contract suite: QUIC over the quinn binding
 * (`quic/`) and TLS 1.3 over TCP (`tls/`). A transport only moves bytes and proves the peer's
 * transport key; certificate-chain checks, the FALCON proof and authorization live in `auth/`
 * and `rpc/`, above it.
 */

export type TransportKind = 'quic' | 'tls' | 'memory';

export interface SocketAddress {
  readonly host: string;
  readonly port: number;
}

/** The public key the transport handshake proved the peer holds. */
export interface ProvenKey {
  readonly algorithm: 'ed25519';
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

/** A bidirectional, ordered, flow-controlled byte stream inside a connection. */
export interface TransportStream {
  readonly id: string;
  /**
   * Next chunk of bytes from the peer, or `null` once the peer has finished writing.
   * Rejects with a `StoqError` (`STREAM_RESET` / `CONNECTION_CLOSED`) if the stream was aborted.
   */
  read(): Promise<Uint8Array | null>;
  /**
   * Resolves once the transport accepted the bytes within its flow-control window. Callers that
   * await each write get backpressure from a slow reader.
   */
  write(data: Uint8Array): Promise<void>;
  /** Cleanly ends our sending side; the peer's `read()` then returns `null`. */
  finish(): Promise<void>;
  /** Aborts both directions at once; pending and future reads/writes reject. Idempotent. */
  reset(): void;
}

export interface TransportConnection {
  readonly id: string;
  readonly kind: TransportKind;
  readonly direction: 'inbound' | 'outbound';
  readonly localAddress: SocketAddress;
  readonly remoteAddress: SocketAddress;
  /**
   * The key the handshake proved, or `null` when the peer presented none (a TLS client without
   * a certificate). Authentication (`auth/`) rejects a connection whose key is null or does not
   * match the certificate chain the peer sends.
   */
  readonly peerKey: ProvenKey | null;
  /**
   * Opens a stream. On QUIC the peer learns of it only with its first write, so callers write
   * before they wait for the peer.
   */
  openStream(): Promise<TransportStream>;
  /** Next stream the peer opened, or `null` once the connection is closed. */
  acceptStream(): Promise<TransportStream | null>;
  /** Closes the connection and every stream in it. Idempotent. */
  close(reason?: string): void;
  /** Settles when the connection is closed, from either side. Never rejects. */
  readonly closed: Promise<void>;
}

export interface TransportListener {
  readonly address: SocketAddress;
  /** Next inbound connection whose transport handshake completed, or `null` once closed. */
  accept(): Promise<TransportConnection | null>;
  /** Stops accepting and closes every connection this listener accepted (as quinn does). */
  close(): Promise<void>;
}

export interface DialOptions {
  readonly signal?: AbortSignal;
}

export interface Transport {
  readonly kind: TransportKind;
  /** Port 0 asks the operating system for a free port; `listener.address` has the real one. */
  listen(address: SocketAddress): Promise<TransportListener>;
  dial(address: SocketAddress, options?: DialOptions): Promise<TransportConnection>;
  /** Closes every listener and connection this transport made. */
  close(): Promise<void>;
}
