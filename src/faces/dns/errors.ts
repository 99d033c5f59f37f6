import { HyperMeshError } from '../../codec/error.js';

/** Why the DNS servers could not start. Bad packets never raise: they are answered or dropped. */
export enum DnsServerErrorCode {
  /** A socket could not be bound (address in use, not local, no permission). */
  LISTEN_FAILED = 'DNS_LISTEN_FAILED',
  /** The DoQ certificate or key was refused by the TLS stack. */
  DOQ_CONFIG_INVALID = 'DNS_DOQ_CONFIG_INVALID',
  /** The QUIC library (native module) could not be loaded on this platform. */
  DOQ_UNAVAILABLE = 'DNS_DOQ_UNAVAILABLE',
}

export class DnsServerError extends HyperMeshError<DnsServerErrorCode> {}
