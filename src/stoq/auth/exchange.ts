import { bytesEqual } from '../../crypto/bytes.js';
import type { FalconBackend, FalconKeyPair } from '../../crypto/falcon.js';
import type { ParsedCertificate } from '../../crypto/x509.js';
import type { PeerIdentity } from '../identity.js';
import type { ProvenKey } from '../transport.js';
import { checkDelegation } from './delegation.js';
import {
  AUTH_PROTOCOL_VERSION,
  type AuthMode,
  type ClientHello,
  type ClientProof,
  type Delegation,
  type ServerHello,
} from './messages.js';
import { verifyPeerCertificate, type CertifiedPeer, type TrustPolicy } from './peer.js';
import { AuthFailureReason, authFailure } from './reasons.js';
import { transcriptDigest, type ExchangeRole, type Transcript } from './transcript.js';

/**
 * The pure steps of the exchange: building each message and checking the peer's. No I/O, no
 * clock, no randomness of their own (nonces and `now` are passed in), so tests can craft
 * hostile messages (replayed proofs, foreign signatures, chains for other keys) and drive each
 * check directly. authenticator.ts runs them over a stream.
 */

/** This side's identity as the exchange needs it (see `localCredentials` in authenticator.ts). */
export interface LocalCredentials {
  /** DER chain, leaf first. */
  readonly chain: readonly Uint8Array[];
  readonly leaf: ParsedCertificate;
  readonly uri: string;
  /** Raw Ed25519 key certified by the leaf, which the transport must prove. */
  readonly transportKey: Uint8Array;
  readonly falcon: FalconKeyPair;
  readonly backend: FalconBackend;
}

export interface PeerCheckContext {
  readonly mode: AuthMode;
  readonly trust: TrustPolicy;
  readonly now: Date;
  /** `connection.peerKey`. */
  readonly provenKey: ProvenKey | null;
  readonly backend: FalconBackend;
  /** Parses certificates, possibly from a cache; default parses each time. */
  readonly parse?: (der: Uint8Array) => ParsedCertificate;
}

/**
 * Per connection: the transport's channel binding (authenticator.ts `channelBinding`), empty
 * bytes on a transport that exposes none. Strict-mode proofs sign it.
 */
export interface ChannelContext {
  readonly channelBinding: Uint8Array;
}

export function buildClientHello(options: {
  readonly mode: AuthMode;
  readonly nonce: Uint8Array;
  readonly local: Pick<LocalCredentials, 'chain'>;
  readonly delegation?: Delegation;
}): ClientHello {
  return {
    t: 'client_hello',
    v: AUTH_PROTOCOL_VERSION,
    mode: options.mode,
    nonce: options.nonce,
    chain: options.local.chain,
    ...(options.delegation ? { delegation: options.delegation } : {}),
  };
}

/** The listener's checks of a ClientHello: mode, certificate chain, and (delegated) delegation. */
export async function checkClientHello(
  hello: ClientHello,
  context: PeerCheckContext,
): Promise<CertifiedPeer> {
  checkMode(hello.mode, context.mode);
  const peer = await verifyPeer(hello.chain, context, 'clientAuth');
  if (context.mode === 'delegated') checkPeerDelegation(hello.delegation, peer, context);
  return peer;
}

export async function buildServerHello(options: {
  readonly mode: AuthMode;
  readonly nonce: Uint8Array;
  readonly clientHello: ClientHello;
  readonly client: CertifiedPeer;
  readonly local: LocalCredentials;
  readonly delegation?: Delegation;
  readonly channelBinding: Uint8Array;
}): Promise<ServerHello> {
  const { mode, nonce, clientHello, client, local } = options;
  const base = {
    t: 'server_hello',
    v: AUTH_PROTOCOL_VERSION,
    mode,
    nonce,
    echo: clientHello.nonce,
    chain: local.chain,
  } as const;
  if (mode === 'delegated')
    return { ...base, ...(options.delegation ? { delegation: options.delegation } : {}) };
  const transcript = buildTranscript({
    clientNonce: clientHello.nonce,
    serverNonce: nonce,
    channelBinding: options.channelBinding,
    client: peerParty(client.identity),
    server: localParty(local),
  });
  return { ...base, proof: await signTranscript('server', transcript, local) };
}

/**
 * The dialer's checks of a ServerHello: mode, the echo of its own nonce (a ServerHello from
 * another connection is a replay), certificate chain, then the server's FALCON proof (strict)
 * or delegation (delegated).
 */
export async function checkServerHello(
  hello: ServerHello,
  context: PeerCheckContext &
    ChannelContext & {
      readonly clientNonce: Uint8Array;
      readonly local: LocalCredentials;
    },
): Promise<CertifiedPeer> {
  checkMode(hello.mode, context.mode);
  if (!bytesEqual(hello.echo, context.clientNonce)) {
    throw authFailure(
      AuthFailureReason.FALCON_PROOF_REPLAYED,
      'the server hello answers another connection',
    );
  }
  const server = await verifyPeer(hello.chain, context, 'serverAuth');
  if (context.mode === 'delegated') {
    checkPeerDelegation(hello.delegation, server, context);
    return server;
  }
  const transcript = buildTranscript({
    clientNonce: context.clientNonce,
    serverNonce: hello.nonce,
    channelBinding: context.channelBinding,
    client: localParty(context.local),
    server: peerParty(server.identity),
  });
  checkProof('server', hello.proof, transcript, server, context.backend);
  return server;
}

export async function buildClientProof(options: {
  readonly mode: AuthMode;
  readonly clientNonce: Uint8Array;
  readonly serverHello: ServerHello;
  readonly server: CertifiedPeer;
  readonly local: LocalCredentials;
  readonly channelBinding: Uint8Array;
}): Promise<ClientProof> {
  const { mode, serverHello, local } = options;
  const base = { t: 'client_proof', v: AUTH_PROTOCOL_VERSION, echo: serverHello.nonce } as const;
  if (mode === 'delegated') return base;
  const transcript = buildTranscript({
    clientNonce: options.clientNonce,
    serverNonce: serverHello.nonce,
    channelBinding: options.channelBinding,
    client: localParty(local),
    server: peerParty(options.server.identity),
  });
  return { ...base, proof: await signTranscript('client', transcript, local) };
}

/**
 * The listener's check of a ClientProof: it must echo this connection's server nonce (otherwise
 * it was captured on another connection: `falcon_proof_replayed`), and in strict mode carry a
 * FALCON signature over this connection's transcript by the client's certified FALCON key.
 */
export function checkClientProof(
  message: ClientProof,
  context: ChannelContext & {
    readonly mode: AuthMode;
    readonly clientNonce: Uint8Array;
    readonly serverNonce: Uint8Array;
    readonly client: CertifiedPeer;
    readonly local: LocalCredentials;
    readonly backend: FalconBackend;
  },
): void {
  if (!bytesEqual(message.echo, context.serverNonce)) {
    throw authFailure(
      AuthFailureReason.FALCON_PROOF_REPLAYED,
      'the client proof belongs to another connection',
    );
  }
  if (context.mode === 'delegated') {
    if (message.proof !== undefined) {
      throw authFailure(
        AuthFailureReason.PROTOCOL_ERROR,
        'delegated mode carries no per-connection proof',
      );
    }
    return;
  }
  const transcript = buildTranscript({
    clientNonce: context.clientNonce,
    serverNonce: context.serverNonce,
    channelBinding: context.channelBinding,
    client: peerParty(context.client.identity),
    server: localParty(context.local),
  });
  checkProof('client', message.proof, transcript, context.client, context.backend);
}

/** One side of the transcript: the transport key it proved and its leaf certificate. */
export interface TranscriptParty {
  readonly transportKey: Uint8Array;
  readonly fingerprint: string;
}

export function localParty(local: LocalCredentials): TranscriptParty {
  return { transportKey: local.transportKey, fingerprint: local.leaf.fingerprint };
}

export function peerParty(peer: PeerIdentity): TranscriptParty {
  return { transportKey: peer.transportKey, fingerprint: peer.certificateFingerprint };
}

export function buildTranscript(parties: {
  readonly clientNonce: Uint8Array;
  readonly serverNonce: Uint8Array;
  readonly channelBinding: Uint8Array;
  readonly client: TranscriptParty;
  readonly server: TranscriptParty;
}): Transcript {
  return {
    clientNonce: parties.clientNonce,
    serverNonce: parties.serverNonce,
    channelBinding: parties.channelBinding,
    clientTransportKey: parties.client.transportKey,
    serverTransportKey: parties.server.transportKey,
    clientFingerprint: parties.client.fingerprint,
    serverFingerprint: parties.server.fingerprint,
  };
}

async function signTranscript(
  signer: ExchangeRole,
  transcript: Transcript,
  local: LocalCredentials,
): Promise<Uint8Array> {
  try {
    return await local.backend.sign(transcriptDigest(signer, transcript), local.falcon.secretKey);
  } catch (error) {
    throw authFailure(
      AuthFailureReason.INTERNAL_ERROR,
      'FALCON signing failed',
      {},
      { cause: error },
    );
  }
}

function checkProof(
  signer: ExchangeRole,
  proof: Uint8Array | undefined,
  transcript: Transcript,
  peer: CertifiedPeer,
  backend: FalconBackend,
): void {
  if (proof === undefined) {
    throw authFailure(
      AuthFailureReason.FALCON_PROOF_INVALID,
      `strict mode needs the ${signer}'s FALCON proof`,
    );
  }
  if (!backend.verify(proof, transcriptDigest(signer, transcript), peer.identity.falconPublicKey)) {
    throw authFailure(
      AuthFailureReason.FALCON_PROOF_INVALID,
      // A proof made for another transport session (a relay) fails here too: it signed that
      // session's channel binding.
      `the ${signer}'s FALCON proof does not verify for this connection`,
      {
        uri: peer.identity.uri,
      },
    );
  }
}

function checkMode(peerMode: AuthMode, localMode: AuthMode): void {
  if (peerMode !== localMode) {
    throw authFailure(
      AuthFailureReason.MODE_MISMATCH,
      `the peer uses ${peerMode} mode, this side ${localMode}`,
      {
        peerMode,
        localMode,
      },
    );
  }
}

function verifyPeer(
  chain: readonly Uint8Array[],
  context: PeerCheckContext,
  purpose: 'clientAuth' | 'serverAuth',
): Promise<CertifiedPeer> {
  return verifyPeerCertificate({
    chain,
    ...(context.parse ? { parse: context.parse } : {}),
    provenKey: context.provenKey,
    trust: context.trust,
    now: context.now,
    purpose,
  });
}

function checkPeerDelegation(
  delegation: Delegation | undefined,
  peer: CertifiedPeer,
  context: PeerCheckContext,
): void {
  checkDelegation(delegation, {
    backend: context.backend,
    falconPublicKey: peer.identity.falconPublicKey,
    provenKey: peer.identity.transportKey,
    uri: peer.identity.uri,
    now: context.now,
  });
}
