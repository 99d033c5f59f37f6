import { taggedHash } from '../../crypto/hash.js';

/**
 * What a strict-mode FALCON proof signs: a domain-separated SHA-256 (hash.ts `taggedHash`) over
 * both sides' fresh nonces, the two transport keys the handshake proved, and the two leaf
 * certificates. Binding the nonces makes a proof useless on any other connection; binding the
 * transport keys ties the post-quantum statement to the classical channel it authenticates
 * (the "channel binding" idea of RFC 5929 / RFC 9266); the signer's role keeps a client's proof
 * from being reflected back as a server's.
 */
export const TRANSCRIPT_TAG = 'hypermesh-stoq-auth-v1';

export type ExchangeRole = 'client' | 'server';

export interface Transcript {
  readonly clientNonce: Uint8Array;
  readonly serverNonce: Uint8Array;
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
    transcript.clientTransportKey,
    transcript.serverTransportKey,
    transcript.clientFingerprint,
    transcript.serverFingerprint,
  );
}
