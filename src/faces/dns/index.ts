/**
 * The DNS faces (layer 6): UDP, TCP and DNS-over-QUIC servers around the answer engine of
 * src/trustchain/dns, with limits and Prometheus metrics. See docs/dns.md, "Servers".
 */
export { startDnsServers } from './servers.js';
export type { DnsServers, DnsServersOptions } from './servers.js';
export { DEFAULT_LIMITS } from './options.js';
export type { BoundAddress, DnsServerLimits, DoqOptions, ListenAddress } from './options.js';
export { DnsServerError, DnsServerErrorCode } from './errors.js';
export { DoqErrorCode } from './doq.js';
export type { DoqCertificate } from './doq.js';
export { LATENCY_BUCKETS } from './metrics.js';
