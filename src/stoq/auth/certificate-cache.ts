import { fingerprint, parseCertificate, type ParsedCertificate } from '../../crypto/x509.js';

/**
 * Parsed certificates by SHA-256 of their DER, least recently used evicted first. Peers present
 * the same chains on every connection and parsing costs far more than hashing, so each
 * handshake only hashes the certificates it has seen before (and x509.ts remembers which issuer
 * signatures already verified for a parsed certificate). Only parsing is cached: the chain,
 * validity, revocation and key checks run on every connection. An entry can never be stale: its
 * key is the hash of the exact bytes it was parsed from.
 *
 * Certificates are parsed before they are verified, so the cache is bounded by entries and by
 * bytes: a peer sending large junk certificates can only evict entries, not grow memory.
 */
export class CertificateCache {
  private readonly entries = new Map<string, ParsedCertificate>();
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number = maxEntries * 8 * 1024,
  ) {}

  parse(der: Uint8Array): ParsedCertificate {
    if (this.maxEntries <= 0) return parseCertificate(der);
    const key = fingerprint(der);
    const cached = this.entries.get(key);
    if (cached) {
      this.entries.delete(key);
      this.entries.set(key, cached);
      return cached;
    }
    const parsed = parseCertificate(der);
    if (parsed.der.length > this.maxBytes) return parsed;
    this.entries.set(key, parsed);
    this.bytes += parsed.der.length;
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [
        string,
        ParsedCertificate,
      ];
      this.entries.delete(oldestKey);
      this.bytes -= oldest.der.length;
    }
    return parsed;
  }

  get size(): number {
    return this.entries.size;
  }

  get sizeBytes(): number {
    return this.bytes;
  }
}
