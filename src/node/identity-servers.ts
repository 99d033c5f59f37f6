import { X509Certificate, type KeyObject } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import { HyperMeshError } from '../codec/error.js';
import { bytesEqual } from '../crypto/bytes.js';
import { derToPem, parseCertificate, pemToDerList } from '../crypto/x509.js';
import type { Logger } from './log.js';

/**
 * The servers besides STOQ that present the node's identity certificate — DNS-over-QUIC and,
 * without its own `acme.certificateFile`, the ACME HTTPS face — follow its renewals
 * (docs/node.md, "Certificate renewal"): `renewed` is cert-renewal.ts's `onRenewed` hook. The
 * new chain is checked once against the identity key and the clock, then handed to every
 * server, which checks it again with its own TLS stack before switching new handshakes to it.
 * A server that refuses keeps serving the chain it has; open connections keep theirs either way.
 * An ACME HTTPS face with its own `acme.certificateFile` is not followed here: the node renews
 * that file separately and hands its chain to that face only (cert-renewal.ts `acme-https`).
 */

export const SWITCHED_LOG_MESSAGE = 'renewed identity certificate served';
export const REFUSED_LOG_MESSAGE = 'renewed identity certificate not served';

export enum IdentityServerErrorCode {
  /** The renewed chain holds no certificate. */
  EMPTY_CHAIN = 'IDENTITY_SERVER_EMPTY_CHAIN',
  /** The renewed leaf does not certify the node's identity key. */
  KEY_MISMATCH = 'IDENTITY_SERVER_KEY_MISMATCH',
  /** The renewed leaf's validity ended already. */
  EXPIRED = 'IDENTITY_SERVER_EXPIRED',
}

export class IdentityServerError extends HyperMeshError<IdentityServerErrorCode> {}

/** A server presenting the identity certificate with the identity key. */
export interface IdentityCertificateServer {
  /** The chain (PEM, leaf first) the server was started with. */
  readonly startedWith: string;
  /**
   * Presents `tls` on new handshakes from now on; throws (and keeps the current certificate)
   * when its TLS stack refuses it.
   */
  replaceCertificate(tls: { readonly cert: string; readonly key: string }): void;
}

export interface IdentityServers {
  /**
   * Follows renewals from now on under `name` (a metric label: `doq`, `acme`). If a renewal was
   * installed since the server read the certificate file, the server switches to it at once.
   */
  follow(name: string, server: IdentityCertificateServer): void;
  /** The renewed chain (DER, leaf first), as written to `identity.certificateFile`. */
  renewed(chain: readonly Uint8Array[]): void;
}

export interface IdentityServersOptions {
  /** The node's identity key (Ed25519): the key every renewed leaf must certify. */
  readonly privateKey: KeyObject;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly now?: () => Date;
}

interface Renewed {
  readonly leaf: Uint8Array;
  readonly serial: string;
  readonly pem: string;
}

function describe(error: unknown): string {
  if (error instanceof HyperMeshError) return `${error.message} [${error.code}]`;
  return error instanceof Error ? error.message : String(error);
}

/** The leaf of `chain` if it certifies `privateKey` and has not expired at `now`. */
export function checkRenewedChain(
  chain: readonly Uint8Array[],
  privateKey: KeyObject,
  now: Date,
): Renewed {
  const leaf = chain[0];
  if (leaf === undefined) {
    throw new IdentityServerError(IdentityServerErrorCode.EMPTY_CHAIN, 'the chain is empty');
  }
  const parsed = parseCertificate(leaf);
  if (!new X509Certificate(leaf).checkPrivateKey(privateKey)) {
    throw new IdentityServerError(
      IdentityServerErrorCode.KEY_MISMATCH,
      `certificate ${parsed.serialNumber} does not certify the node's identity key`,
      { serial: parsed.serialNumber },
    );
  }
  if (parsed.notAfter.getTime() <= now.getTime()) {
    throw new IdentityServerError(
      IdentityServerErrorCode.EXPIRED,
      `certificate ${parsed.serialNumber} expired at ${parsed.notAfter.toISOString()}`,
      { serial: parsed.serialNumber, notAfter: parsed.notAfter.toISOString() },
    );
  }
  return {
    leaf,
    serial: parsed.serialNumber,
    pem: chain.map((der) => derToPem(der)).join(''),
  };
}

export function identityServers(options: IdentityServersOptions): IdentityServers {
  const { logger, privateKey } = options;
  const now = options.now ?? (() => new Date());
  const key = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const servers = new Map<string, IdentityCertificateServer>();
  let latest: Renewed | null = null;
  const switches = new Counter({
    name: 'hypermesh_identity_certificate_server_switches_total',
    help: 'Renewed identity certificates handed to a server besides STOQ, by server and result (switched, refused)',
    labelNames: ['server', 'result'] as const,
    registers: [options.registry],
  });

  const install = (name: string, server: IdentityCertificateServer, chain: Renewed): void => {
    try {
      server.replaceCertificate({ cert: chain.pem, key });
    } catch (error) {
      switches.inc({ server: name, result: 'refused' });
      logger.error(REFUSED_LOG_MESSAGE, {
        server: name,
        serial: chain.serial,
        error: describe(error),
      });
      return;
    }
    switches.inc({ server: name, result: 'switched' });
    logger.info(SWITCHED_LOG_MESSAGE, { server: name, serial: chain.serial });
  };

  return {
    follow(name, server) {
      if (servers.has(name)) throw new RangeError(`a server named ${name} is followed already`);
      servers.set(name, server);
      for (const result of ['switched', 'refused']) switches.inc({ server: name, result }, 0);
      if (latest === null) return;
      const started = pemToDerList(server.startedWith)[0];
      if (started === undefined || !bytesEqual(started, latest.leaf)) install(name, server, latest);
    },
    renewed(chain) {
      let checked: Renewed;
      try {
        checked = checkRenewedChain(chain, privateKey, now());
      } catch (error) {
        for (const name of servers.keys()) switches.inc({ server: name, result: 'refused' });
        logger.error(REFUSED_LOG_MESSAGE, {
          servers: [...servers.keys()],
          error: describe(error),
        });
        return;
      }
      latest = checked;
      for (const [name, server] of servers) install(name, server, checked);
    },
  };
}
