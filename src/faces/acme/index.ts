/**
 * The ACME face (layer 6): an RFC 8555 server over HTTPS with http-01 and dns-01 validation,
 * state in SQLite, and issuance through the `AcmeIssuer` interface. See docs/acme.md.
 */
export { startAcmeServer, DEFAULT_MAX_BODY_BYTES } from './server.js';
export { HTTP01_PORT, TLS_ALPN01_PORT } from './challenge-ports.js';
export type { AcmeServer, AcmeServerOptions } from './server.js';
export { AcmeStore, ACME_SCHEMA_VERSION } from './store.js';
export { AcmeError, AcmeErrorCode } from './errors.js';
export { AcmeIssuerError, AcmeIssuerErrorCode } from './issuer.js';
export type {
  AcmeIssuer,
  AcmeIssueRequest,
  AcmeIssuedCertificate,
  AcmeRevokeRequest,
} from './issuer.js';
export { LocalIssuer, createLocalCa } from './local-issuer.js';
export type {
  LocalCa,
  LocalCaOptions,
  LocalIssuerOptions,
  LocalRevocation,
} from './local-issuer.js';
export { DnsServerTxtResolver } from './dns-resolver.js';
export type { DnsServerResolverOptions, TxtResolver } from './dns-resolver.js';
export { ZoneSourceCaaResolver } from './caa-resolver.js';
export { RecursiveResolver, SplitCaaResolver, parseResolverAddress } from './external-resolver.js';
export type {
  AddressResolver,
  ExternalNames,
  ExternalResolver,
  RecursiveResolverOptions,
} from './external-resolver.js';
export { checkCaa } from './caa-check.js';
export type { CaaCheckRequest, CaaPolicy } from './caa-check.js';
export type { CaaResolver } from './caa-resolver.js';
export { ProblemType, PROBLEM_PREFIX, PROBLEM_STATUS, AcmeProblem } from './problems.js';
export type { AcmeIdentifier, ProblemDocument } from './problems.js';
export { SUPPORTED_ALGORITHMS, jwkThumbprint } from './jws.js';
export {
  RENEWAL_WINDOW_END,
  RENEWAL_WINDOW_START,
  certIdOf,
  parseCertId,
  suggestedWindow,
} from './renewal-info.js';
export type { CertId, RenewalWindow } from './renewal-info.js';
export { keyAuthorization, dns01TxtValue } from './validation.js';
export type { IdentifierPolicy } from './identifiers.js';
export type {
  AcmeCorroborate,
  AcmeCorroboration,
  AcmeCorroborationContext,
  AcmeMpicOutcome,
} from './mpic.js';
export { validateChallenge } from './validation.js';
export type { ValidationOptions } from './validation.js';
export type { ChallengeType } from './identifiers.js';
