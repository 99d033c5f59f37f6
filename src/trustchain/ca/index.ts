/**
 * The TrustChain certificate authority core (docs/ca.md): pure functions that the consensus
 * transactions call at admission (`parseCertificateRequest`, `checkRequest`, `caaAllows`,
 * `rateLimitStep`) and at execution (`prepareBlock`, then the proposer's `issueBlock` /
 * `signBlockCertificates` and every validator's `checkBlockCertificates`), plus the hierarchy
 * (genesis ceremony, governed addition of validators, trust bundle) and the offline verifier.
 */
export { CaError, CaErrorCode } from './errors.js';
export { parseCsr, createCsr, type ParsedCsr, type CsrKeyType, MAX_CSR_BYTES } from './csr.js';
export { PROFILES, PROFILE_NAMES, type Profile, type ProfileName } from './profiles.js';
export {
  parseCertificateRequest,
  encodeCertificateRequest,
  decodeCertificateRequest,
  decodeCertificateRequestCached,
  checkRequest,
  falconPossessionMessage,
  proveFalconPossession,
  type CertificateRequest,
  type CertificateRequestInput,
  type IssuancePolicy,
  type Requester,
  type Refusal,
  type RequestDecision,
} from './request.js';
export {
  caaAllows,
  relevantCaaRecordSet,
  parseIssueValue,
  type CaaRecord,
  type CaaDecision,
} from './caa.js';
export { rateLimitStep, type RateLimit, type RateWindow, type RateDecision } from './rate-limit.js';
export {
  createDeterministicSigner,
  createRandomizedSigner,
  type CertificateSigner,
} from './certificate.js';
export {
  ISSUANCE_REFERENCE_OID,
  BATCH_INCLUSION_OID,
  type IssuanceReference,
  type BatchInclusion,
} from './extensions.js';
export {
  parseIssuer,
  certificateSerial,
  leafTbs,
  certificateTbs,
  prepareBlock,
  signBlockCertificates,
  issueBlock,
  checkIssuedCertificate,
  checkBlockCertificates,
  inclusionOf,
  type Issuer,
  type IssuanceInputs,
  type BlockIssuance,
  type BlockIssuanceItem,
  type PreparedBlock,
  type IssuedBlock,
} from './issue.js';
export {
  CertificateBatch,
  batchSignatureMessage,
  signBatch,
  verifyBatchSignature,
  encodeBatchSignature,
  decodeBatchSignature,
  type BatchSignature,
  type BatchStatement,
} from './batch.js';
export {
  parseTrustBundle,
  encodeTrustBundle,
  buildTrustBundle,
  trustBundlePem,
  type TrustBundle,
  type TrustBundleValidator,
} from './bundle.js';
export {
  runGenesisCeremony,
  createValidatorCaRequest,
  issueValidatorIntermediate,
  loadRootSigningKeys,
  addValidator,
  createRootCertificate,
  type ValidatorCaRequest,
  type RootSigningKeys,
} from './hierarchy.js';
export { buildCrl, type CrlInput, type RevokedCertificate } from './crl.js';
export {
  verifyIssuedCertificate,
  type VerifyFailure,
  type VerifiedIssuedCertificate,
} from './verify.js';
export {
  OCSP_NONCE_OID,
  MAX_OCSP_REQUESTS,
  MAX_OCSP_REQUEST_BYTES,
  OcspResponseStatus,
  parseOcspRequest,
  issuerHashes,
  certIdMatchesIssuer,
  buildOcspResponse,
  ocspErrorResponse,
  serialMagnitude,
  type OcspCertId,
  type OcspCertStatus,
  type OcspHashAlgorithm,
  type OcspRequest,
  type OcspResponseInput,
  type OcspSingleResponse,
} from './ocsp.js';
