import { createHash } from 'node:crypto';
import { promises as dnsPromises } from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { bytesEqual } from '../../crypto/bytes.js';
import { X509Error, parseCertificate, type ParsedCertificate } from '../../crypto/x509.js';
import { ipAddressBytes } from '../../trustchain/ca/names.js';
import { HTTP01_PORT } from './challenge-ports.js';
import { isPublicAddress } from './address-class.js';
import { DeadlineExpired, beforeDeadline, startDeadline, type Deadline } from './deadline.js';
import { AcmeError, AcmeErrorCode } from './errors.js';
import type { TxtResolver } from './dns-resolver.js';
import type { AddressResolver, ExternalNames } from './external-resolver.js';
import type { ChallengeType } from './identifiers.js';
import { encodeBase64Url } from './jws.js';
import { AcmeProblem, ProblemType, problem, type AcmeIdentifier } from './problems.js';

/**
 * Challenge validation (RFC 8555 §8): the key authorization `token || '.' || thumbprint`
 * (§8.1), http-01 (§8.3), dns-01 (§8.4) and tls-alpn-01 (RFC 8737; for IP addresses RFC 8738
 * §6). A validation resolves to `null` when the
 * challenge is met and to the problem to record otherwise; it never throws for anything the
 * remote side does. One deadline covers a whole check, address or TXT lookup included.
 */

export interface ValidationOptions {
  /** Port http-01 connects to (RFC 8555 §8.3: 80; configurable so tests run unprivileged). */
  readonly http01Port: number;
  /** Port tls-alpn-01 connects to (RFC 8737 §3: 443). */
  readonly tlsAlpn01Port: number;
  /**
   * TEST ONLY: connect every http-01 and tls-alpn-01 validation to this IP address instead of
   * the address the identifier resolves to (the Host header and SNI still name the identifier).
   * Unset by default; with it set, validation proves nothing about who controls a name.
   */
  readonly testOnlyConnectAddress?: string;
  /**
   * Per validation attempt: the check, lookups included (a `Deadline` given to
   * `validateChallenge` replaces it, so a caller can put one deadline over more work).
   */
  readonly timeoutMs: number;
  /** dns-01 TXT lookups; dns-01 is not offered without one (except for external names). */
  readonly txtResolver?: TxtResolver;
  /**
   * External domain names (external-resolver.ts): a DNS identifier `isExternal` calls external
   * is resolved (http-01, tls-alpn-01) through its resolver, and its dns-01 TXT record is
   * looked up there. Other names keep the cluster's path (`addressResolver` for connecting,
   * `txtResolver` for TXT). Absent: every name takes that path. Either way a DNS name is
   * connected to at the first globally routable address it resolves to (address-class.ts; a
   * name with none is the `dns` problem and nothing is connected to).
   */
  readonly external?: ExternalNames;
  /**
   * A/AAAA lookups of the DNS names that are not external (the cluster's zones, whose names
   * anyone may register under an open policy); default the operating system's resolver
   * (`dns.lookup`, what `node:http` would use).
   */
  readonly addressResolver?: AddressResolver;
  /**
   * TEST ONLY: connect a DNS name to the first address it resolves to even when it is
   * loopback, private, link-local or otherwise not globally routable (tests whose "internet"
   * lives on 127.0.0.1). Default false: with it set, any account can make this server send
   * requests to hosts on its internal networks.
   */
  readonly allowNonPublicAddresses?: boolean;
}

/** Largest http-01 response body read; a key authorization is about 87 characters. */
export const MAX_HTTP01_BODY_BYTES = 8_192;

export function keyAuthorization(token: string, thumbprint: string): string {
  return `${token}.${thumbprint}`;
}

/** The dns-01 TXT value: base64url(SHA-256(key authorization)). */
export function dns01TxtValue(keyAuth: string): string {
  return encodeBase64Url(createHash('sha256').update(keyAuth, 'utf8').digest());
}

export async function validateChallenge(
  type: ChallengeType,
  identifier: AcmeIdentifier,
  token: string,
  keyAuth: string,
  options: ValidationOptions,
  deadline: Deadline = startDeadline(options.timeoutMs),
): Promise<AcmeProblem | null> {
  if (type === 'http-01') return validateHttp01(identifier, token, keyAuth, options, deadline);
  if (type === 'tls-alpn-01') return validateTlsAlpn01(identifier, keyAuth, options, deadline);
  return validateDns01(identifier, keyAuth, options, deadline);
}

function isExternal(identifier: AcmeIdentifier, options: ValidationOptions): boolean {
  return identifier.type === 'dns' && options.external?.isExternal(identifier.value) === true;
}

/**
 * The operating system's resolver (getaddrinfo) as an `AddressResolver`: the addresses in the
 * order it gives them; a name it does not know has none.
 */
const systemAddressResolver: AddressResolver = {
  async lookupAddresses(name) {
    try {
      const found = await dnsPromises.lookup(name, { all: true, verbatim: true });
      return found.map((entry) => entry.address);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === dnsPromises.NOTFOUND || code === dnsPromises.NODATA) return [];
      throw new AcmeError(
        AcmeErrorCode.DNS_LOOKUP_FAILED,
        `the system resolver failed${typeof code === 'string' ? ` (${code})` : ''}`,
        { reason: 'resolver', code: typeof code === 'string' ? code : null },
      );
    }
  },
};

/**
 * The host a validation connects to: `testOnlyConnectAddress` when set, an IP identifier
 * itself (its grant's ranges decide which addresses may be validated), else the first globally
 * routable address the name resolves to — through the external resolver for an external name,
 * `addressResolver` for the others — and a `dns` problem when the lookup fails, runs out of
 * time or finds none. The detail never names the addresses: it would tell a caller what
 * answers where inside.
 */
async function connectHost(
  identifier: AcmeIdentifier,
  options: ValidationOptions,
  deadline: Deadline,
): Promise<string | AcmeProblem> {
  if (options.testOnlyConnectAddress !== undefined) return options.testOnlyConnectAddress;
  if (identifier.type === 'ip') return identifier.value;
  const resolver =
    isExternal(identifier, options) && options.external !== undefined
      ? options.external.resolver
      : (options.addressResolver ?? systemAddressResolver);
  let addresses: string[];
  try {
    addresses = await beforeDeadline(resolver.lookupAddresses(identifier.value), deadline);
  } catch (error) {
    if (error instanceof DeadlineExpired) {
      return problem(
        ProblemType.dns,
        `A/AAAA lookup of ${identifier.value} did not finish within ${error.ms} ms`,
        { identifier },
      );
    }
    if (!(error instanceof AcmeError)) throw error;
    return problem(
      ProblemType.dns,
      `A/AAAA lookup of ${identifier.value} failed: ${error.message}`,
      {
        identifier,
      },
    );
  }
  if (addresses.length === 0) {
    return problem(ProblemType.dns, `${identifier.value} has no A or AAAA record`, { identifier });
  }
  const address =
    options.allowNonPublicAddresses === true ? addresses[0] : addresses.find(isPublicAddress);
  if (address === undefined) {
    return problem(
      ProblemType.dns,
      `${identifier.value} resolves only to addresses that are not globally routable (loopback, private, link-local or reserved); this server does not connect to those`,
      { identifier },
    );
  }
  return address;
}

/**
 * A socket error as its code (ECONNREFUSED, ECONNRESET, ERR_SSL_…): its message can name the
 * address connected to, which the client is not told.
 */
function errorCode(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? code : 'no code';
}

function hostHeader(identifier: AcmeIdentifier, port: number): string {
  const host = net.isIPv6(identifier.value) ? `[${identifier.value}]` : identifier.value;
  return port === HTTP01_PORT ? host : `${host}:${port}`;
}

export async function validateHttp01(
  identifier: AcmeIdentifier,
  token: string,
  keyAuth: string,
  options: ValidationOptions,
  deadline: Deadline = startDeadline(options.timeoutMs),
): Promise<AcmeProblem | null> {
  const host = await connectHost(identifier, options, deadline);
  if (host instanceof AcmeProblem) return host;
  const port = options.http01Port;
  const path = `/.well-known/acme-challenge/${token}`;
  const where = `http://${hostHeader(identifier, port)}${path}`;
  return new Promise((resolve) => {
    let done = false;
    const finish = (outcome: AcmeProblem | null): void => {
      if (done) return;
      done = true;
      deadline.signal.removeEventListener('abort', expire);
      request.destroy();
      resolve(outcome);
    };
    const expire = (): void =>
      finish(
        problem(ProblemType.connection, `${where}: no response within ${deadline.ms} ms`, {
          identifier,
        }),
      );
    const request = http.request({
      host,
      port,
      path,
      method: 'GET',
      headers: { Host: hostHeader(identifier, port), Accept: '*/*', Connection: 'close' },
      agent: false,
    });
    request.on('error', (error) =>
      finish(
        problem(ProblemType.connection, `${where}: connection failed (${errorCode(error)})`, {
          identifier,
        }),
      ),
    );
    request.on('response', (response) => {
      if (response.statusCode !== 200) {
        finish(
          problem(ProblemType.unauthorized, `${where} answered HTTP ${response.statusCode}`, {
            identifier,
          }),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_HTTP01_BODY_BYTES) {
          finish(
            problem(
              ProblemType.incorrectResponse,
              `${where}: body longer than ${MAX_HTTP01_BODY_BYTES} bytes`,
              {
                identifier,
              },
            ),
          );
          return;
        }
        chunks.push(chunk);
      });
      response.on('error', (error) =>
        finish(
          problem(ProblemType.connection, `${where}: connection failed (${errorCode(error)})`, {
            identifier,
          }),
        ),
      );
      response.on('end', () => {
        // RFC 8555 §8.3: trailing whitespace is ignored.
        const body = Buffer.concat(chunks).toString('utf8').replace(/\s+$/, '');
        finish(
          body === keyAuth
            ? null
            : problem(
                ProblemType.incorrectResponse,
                `${where}: the body is not the key authorization`,
                { identifier },
              ),
        );
      });
    });
    if (deadline.signal.aborted) expire();
    else deadline.signal.addEventListener('abort', expire, { once: true });
    request.end();
  });
}

export async function validateDns01(
  identifier: AcmeIdentifier,
  keyAuth: string,
  options: ValidationOptions,
  deadline: Deadline = startDeadline(options.timeoutMs),
): Promise<AcmeProblem | null> {
  const name = `_acme-challenge.${identifier.value}`;
  const resolver = isExternal(identifier, options)
    ? options.external?.resolver
    : options.txtResolver;
  if (resolver === undefined) {
    return problem(ProblemType.dns, 'this server has no DNS resolver for dns-01', { identifier });
  }
  let values: string[];
  try {
    values = await beforeDeadline(resolver.lookupTxt(name), deadline);
  } catch (error) {
    if (error instanceof DeadlineExpired) {
      return problem(
        ProblemType.dns,
        `TXT lookup of ${name} did not finish within ${error.ms} ms`,
        { identifier },
      );
    }
    const message =
      error instanceof AcmeError || error instanceof Error ? error.message : String(error);
    return problem(ProblemType.dns, `TXT lookup of ${name} failed: ${message}`, { identifier });
  }
  if (values.length === 0) {
    return problem(ProblemType.incorrectResponse, `no TXT record at ${name}`, { identifier });
  }
  const expected = dns01TxtValue(keyAuth);
  return values.includes(expected)
    ? null
    : problem(
        ProblemType.incorrectResponse,
        `no TXT record at ${name} holds the expected digest (found ${values.length})`,
        { identifier },
      );
}

/** RFC 8737 §6.2: the ALPN protocol of the validation handshake. */
export const ACME_TLS_ALPN_PROTOCOL = 'acme-tls/1';
/** RFC 8737 §6.1: id-pe-acmeIdentifier. */
export const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';

/** RFC 8738 §6: the SNI for an address is its reverse-mapping name (in-addr.arpa, ip6.arpa). */
export function reverseName(address: string): string {
  const bytes = ipAddressBytes(address);
  if (bytes.length === 4) return `${[...bytes].reverse().join('.')}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (const byte of bytes) nibbles.push((byte >> 4).toString(16), (byte & 0xf).toString(16));
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}

/**
 * RFC 8737 §3: the certificate the server presents for `acme-tls/1` must name exactly the
 * identifier in its subjectAltName and carry the critical acmeIdentifier extension holding the
 * DER OCTET STRING of SHA-256(key authorization).
 */
export function checkTlsAlpnCertificate(
  certificate: ParsedCertificate,
  identifier: AcmeIdentifier,
  keyAuth: string,
): string | null {
  const { dnsNames, ipAddresses, uris } = certificate;
  const namesOnlyIdentifier =
    uris.length === 0 &&
    (identifier.type === 'dns'
      ? ipAddresses.length === 0 && dnsNames.length === 1 && dnsNames[0] === identifier.value
      : dnsNames.length === 0 &&
        ipAddresses.length === 1 &&
        bytesEqual(ipAddressBytes(ipAddresses[0] as string), ipAddressBytes(identifier.value)));
  if (!namesOnlyIdentifier) return 'the certificate must name exactly the identifier';
  const extension = certificate.extensions.find((e) => e.oid === ACME_IDENTIFIER_OID);
  if (extension === undefined) return 'the certificate has no acmeIdentifier extension';
  if (!extension.critical) return 'the acmeIdentifier extension is not critical';
  const digest = createHash('sha256').update(keyAuth, 'utf8').digest();
  const expected = Buffer.concat([Buffer.from([0x04, 0x20]), digest]);
  if (!bytesEqual(extension.value, expected)) {
    return 'the acmeIdentifier extension does not hold SHA-256 of the key authorization';
  }
  return null;
}

export async function validateTlsAlpn01(
  identifier: AcmeIdentifier,
  keyAuth: string,
  options: ValidationOptions,
  deadline: Deadline = startDeadline(options.timeoutMs),
): Promise<AcmeProblem | null> {
  const host = await connectHost(identifier, options, deadline);
  if (host instanceof AcmeProblem) return host;
  const port = options.tlsAlpn01Port;
  const servername = identifier.type === 'ip' ? reverseName(identifier.value) : identifier.value;
  const where = `tls-alpn-01 ${servername} port ${port}`;
  return new Promise((resolve) => {
    let done = false;
    const finish = (outcome: AcmeProblem | null): void => {
      if (done) return;
      done = true;
      deadline.signal.removeEventListener('abort', expire);
      socket.destroy();
      resolve(outcome);
    };
    const expire = (): void =>
      finish(
        problem(ProblemType.connection, `${where}: no handshake within ${deadline.ms} ms`, {
          identifier,
        }),
      );
    const socket = tls.connect({
      host,
      port,
      servername,
      ALPNProtocols: [ACME_TLS_ALPN_PROTOCOL],
      // The validation certificate is self-signed by design (RFC 8737 §3).
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    });
    socket.on('error', (error) =>
      finish(
        problem(ProblemType.tls, `${where}: the TLS connection failed (${errorCode(error)})`, {
          identifier,
        }),
      ),
    );
    socket.on('secureConnect', () => {
      if (socket.alpnProtocol !== ACME_TLS_ALPN_PROTOCOL) {
        finish(
          problem(
            ProblemType.tls,
            `${where}: the server did not negotiate ${ACME_TLS_ALPN_PROTOCOL}`,
            {
              identifier,
            },
          ),
        );
        return;
      }
      const peer = socket.getPeerX509Certificate();
      let reason: string | null;
      try {
        reason =
          peer === undefined
            ? 'no certificate'
            : checkTlsAlpnCertificate(
                parseCertificate(new Uint8Array(peer.raw)),
                identifier,
                keyAuth,
              );
      } catch (error) {
        if (!(error instanceof X509Error)) throw error;
        reason = `the certificate does not parse: ${error.message}`;
      }
      finish(
        reason === null
          ? null
          : problem(ProblemType.incorrectResponse, `${where}: ${reason}`, { identifier }),
      );
    });
    if (deadline.signal.aborted) expire();
    else deadline.signal.addEventListener('abort', expire, { once: true });
  });
}
