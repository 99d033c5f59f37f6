/**
 * The `ca` consensus module (docs/ca.md, "The ca module"): certificate requests, renewals and
 * revocations as transactions, publication of each block's certificates by a validator's
 * intermediate in a later block, and the client functions other faces use.
 */
export {
  CaModuleError,
  CaModuleErrorCode,
  CA_RESULT_CODES,
  CaPublicationError,
  CaStateError,
  CaGenesisError,
} from './errors.js';
export {
  REVOCATION_REASONS,
  decodeCaBody,
  encodeCaBody,
  revocationMessage,
  type CaTx,
  type CaRequestTx,
  type CaRenewTx,
  type CaRevokeTx,
  type CaPublishTx,
  type CaAddIntermediateTx,
  type CaApproveIntermediateTx,
} from './body.js';
export {
  DEFAULT_PUBLISH_WINDOW_BLOCKS,
  DEFAULT_RATE_LIMIT,
  caGenesisFromApp,
  eligibleIssuers,
  firstIssuerIndex,
  requesterFor,
  type CaGenesisJson,
  type CaGrant,
  type CaRequester,
  type CaIssuer,
  type CaModuleConfig,
} from './config.js';
export { CA_QUERIES, createCaModule } from './module.js';
export {
  CLUSTER_DNS_MODULE,
  ClusterDnsReader,
  clusterCaaIdentities,
  type CaClusterDns,
  type CaaRefusal,
} from './cluster-dns.js';
export {
  GENESIS_CERTIFICATE_HEIGHT,
  MAX_GENESIS_CERTIFICATES,
  MAX_GENESIS_CERTIFICATE_BYTES,
  caInitialState,
  genesisCertificateTxHash,
  isGenesisCertificateRecord,
  lacksIssuanceExtensions,
  type GenesisCertificate,
} from './genesis.js';
export {
  DCV_METHODS,
  DCV_REUSE_MAX_MS,
  DEFAULT_DCV_MAX_AGE_BLOCKS,
  MAX_DCV_ATTESTATIONS,
  MAX_DCV_ATTESTATION_BYTES,
  MAX_DCV_MAX_AGE_BLOCKS,
  dcvIdentifier,
  dcvQuorum,
  dcvQuorumShortfall,
  dcvRequiredCount,
  decodeDcvAttestation,
  signDcvAttestation,
  verifyDcvAttestation,
  type DcvAttestation,
  type DcvAttestationBody,
  type DcvElectorate,
  type DcvMethod,
  type DcvQuorum,
} from './dcv.js';
export {
  VOTING_POWERS_KEY,
  decodeVotingPowers,
  encodeVotingPowers,
  readDcvElectorate,
  votingPowersUpdate,
} from './voting-power.js';
export {
  DEFAULT_INTERMEDIATE_PROPOSAL_BLOCKS,
  MAX_INTERMEDIATE_PROPOSALS,
  IntermediateStateReader,
  approvalQuorumReached,
  createIssuerView,
  decodeAddedIntermediate,
  decodeProposal,
  holderOf,
  type AddedIntermediateRecord,
  type IntermediateProposal,
  type IssuerView,
} from './intermediates.js';
export {
  assembleBatchCertificates,
  buildPublication,
  prepareBatch,
  verifyPublication,
  type IssuerKeys,
} from './publication.js';
export {
  CA_MODULE_NAME,
  CaStateReader,
  MAX_BATCH_CERTIFICATES,
  MAX_PENDING_BATCHES,
  caStateKey,
  type BatchRecord,
  type CertificateRecord,
  type GenesisCertificateRecord,
  type IssuanceRecord,
  type PublishedRecord,
  type RevocationRecord,
} from './state.js';
export {
  genesisCertificateProfile,
  genesisRenewalMismatch,
  genesisRenewalRequest,
  genesisRenewalRequester,
  type GenesisRenewalField,
} from './genesis-renewal.js';
export {
  buildCaRequestTransaction,
  caQuery,
  caRenewBody,
  caRequestBody,
  caRevokeBody,
  certificateChainPem,
  findPublishedCertificate,
  signRevocation,
  verifiedCaValue,
  type IssuanceStatus,
} from './client.js';
export {
  EMPTY_TREE_HEAD,
  TREE_HEAD_KEY,
  appendCertificates,
  certificateLogLeaf,
  decodeTreeHead,
  encodeTreeHead,
  treeHeadRoot,
  type ConsensusTreeHead,
} from './tree-head.js';
export {
  QUORUM_CHECKPOINT_FORMAT,
  QuorumCheckpointError,
  QuorumCheckpointErrorCode,
  compareServedCheckpoint,
  ctLogOrigin,
  parseQuorumCheckpoint,
  quorumCheckpointToJson,
  validatorCosigners,
  verifyQuorumCheckpoint,
  type QuorumCheckpoint,
  type QuorumCheckpointJson,
  type ServedComparison,
  type VerifiedQuorumCheckpoint,
} from './quorum-checkpoint.js';
export {
  caAddIntermediateBody,
  caApproveIntermediateBody,
  intermediateHash,
  readIntermediates,
  trustBundleInEffect,
  type IntermediateListing,
} from './intermediate-client.js';
