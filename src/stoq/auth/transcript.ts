import { taggedHash } from '../../crypto/hash.js';

/**
 * What a strict-mode FALCON proof signs: a domain-separated SHA-256 (hash.ts `taggedHash`) over
 * both sides' fresh nonces, the transport's channel binding, the two transport keys the
 * handshake proved, and the two leaf certificates. Binding the nonces makes a proof useless on
 * any other connection; the channel binding (a TLS exporter value, RFC 5705 / RFC 9266 §2) ties
 * the post-quantum statement to this one transport session, so a relay that terminates two
 * sessions (possible for anyone who holds both Ed25519 keys) presents proofs over the wrong
 * exporter value; the transport keys name whom the classical channel authenticated; the
 * signer's role keeps a client's proof from being reflected back as a server's.
 *
 * v2 added the channel binding; a v1 peer's proof never verifies here, and the protocol
 * version in every message (messages.ts) makes the two refuse each other by name.
 */
export const TRANSCRIPT_TAG = 'hypermesh-stoq-auth-v2';

export type ExchangeRole = 'client' | 'server';

export interface Transcript {
  readonly clientNonce: Uint8Array;
  readonly serverNonce: Uint8Array;
  /**
   * Keying material both ends of this transport session derived from it and nobody else can
   * (authenticator.ts `channelBinding`), or empty bytes when the transport exposes none.
   */
  readonly channelBinding: Uint8Array;
  /** Raw Ed25519 keys. */
  readonly clientTransportKey: Uint8Array;
  readonly serverTransportKey: Uint8Array;
  /** SHA-256 of the leaf certificates, lowercase hex. */
  readonly clientFingerprint: string;
  readonly serverFingerprint: string;
}

/** The 32-byte digest the `signer` side signs with its FALCON key. */
export function transcriptDigest(signer: ExchangeRole, transcript: Transcript): Uint8Array {
  return taggedHash(
    TRANSCRIPT_TAG,
    signer,
    transcript.clientNonce,
    transcript.serverNonce,
    transcript.channelBinding,
    transcript.clientTransportKey,
    transcript.serverTransportKey,
    transcript.clientFingerprint,
    transcript.serverFingerprint,
  );
}
