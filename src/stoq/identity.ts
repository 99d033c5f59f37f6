import type { ParsedCertificate } from '../crypto/x509.js';
import type { TransportConnection } from './transport.js';

/**
 * Who a STOQ peer is, as proven by authentication (`auth/`): its certificate chain verified to
 * the trust roots, the certified key equal to the key the transport handshake proved, and a
 * valid FALCON-1024 proof. Authorization decisions (`rpc/`) read only this.
 */
export type Role = 'validator' | 'node' | 'client';
export const ROLES: readonly Role[] = ['validator', 'node', 'client'];

export interface PeerIdentity {
  /** Cluster name from the certificate's `spiffe://<cluster>/<role>/<name>` URI. */
  readonly cluster: string;
  readonly role: Role;
  readonly name: string;
  /** The full identity URI, `spiffe://<cluster>/<role>/<name>`. */
  readonly uri: string;
  /** SHA-256 of the leaf certificate DER, lowercase hex. */
  readonly certificateFingerprint: string;
  /** Raw 32-byte Ed25519 transport key the handshake proved. */
  readonly transportKey: Uint8Array;
  /** Raw FALCON-1024 public key certified for this peer. */
  readonly falconPublicKey: Uint8Array;
  /** End of the leaf certificate's validity. */
  readonly notAfter: Date;
}

/** An authenticated connection: nothing is served on a connection before it becomes one. */
export interface Session {
  readonly connection: TransportConnection;
  readonly peer: PeerIdentity;
  /**
   * The peer's verified certificate path, leaf first (absent for sessions made without
   * certificates, e.g. in-memory tests): what `StoqEndpoint.recheckRevocation` checks again.
   */
  readonly path?: readonly ParsedCertificate[];
}

export interface Authenticator {
  /**
   * Runs the STOQ authentication exchange on a fresh connection, as the dialer when
   * `connection.direction` is outbound and as the listener otherwise. Rejects with a
   * `StoqError` of code `UNAUTHENTICATED` whose `detail.reason` says why; closes the connection
   * on failure.
   */
  authenticate(connection: TransportConnection): Promise<Session>;
}
