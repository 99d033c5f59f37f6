/**
 * The ports ACME validation connects to, fixed by the protocols rather than by configuration:
 * http-01 fetches `http://<domain>/.well-known/acme-challenge/<token>` on port 80 (RFC 8555
 * §8.3) and tls-alpn-01 handshakes on port 443 (RFC 8737 §3). They are defaults only so that
 * tests can run unprivileged on other ports (`acme.http01Port`, `acme.tlsAlpn01Port`,
 * docs/acme.md); a public CA must use these.
 */
export const HTTP01_PORT = 80;
export const TLS_ALPN01_PORT = 443;
