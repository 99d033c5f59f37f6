import { sign as signWithKey, type KeyObject } from 'node:crypto';
import type { QueryRequest, QueryResponse } from '../../consensus/app.js';
import { buildTransaction, type BuiltTransaction } from '../../consensus/application/envelope.js';
import { derToPem } from '../../crypto/x509.js';
import type { FalconBackend } from '../../crypto/falcon.js';
import { decodeStateProof, verifyStateProof } from '../../storage/index.js';
import type { TrustBundle } from '../ca/bundle.js';
import {
  encodeCertificateRequest,
  parseCertificateRequest,
  type CertificateRequestInput,
} from '../ca/request.js';
import { encodeCaBody, revocationMessage } from './body.js';
import { MAX_DCV_ATTESTATIONS } from './dcv.js';
import { CaModuleError, CaModuleErrorCode, CaStateError } from './errors.js';
import { CA_QUERIES } from './module.js';
import {
  CA_MODULE_NAME,
  caStateKey,
  certificateKey,
  decodeCertificateRecord,
  decodeIssuance,
  decodeRevocation,
  requestKey,
  revocationKey,
  type RevocationRecord,
} from './state.js';

/**
 * The client side of the `ca` module, for the CLI and other faces (e.g. an ACME server): build
 * the transaction bodies, sign them, and read a request's outcome with every answer's state
 * proof checked against the state root the answer names. That root is the node's word: a
 * reader that does not trust the node passes a `CaAnswerCheck` (the node layer's
 * `committedCaCheck`, src/node/cert-tools.ts) that holds each root to a committed header.
 */

/**
 * A `request` body. Parses the request first (stateless checks); throws `CaError`. `dcv`: the
 * encoded DCV attestations (dcv.ts) for its DNS names and IP addresses, at most
 * `MAX_DCV_ATTESTATIONS` (more throw `CaModuleError CA_DCV_INVALID`); none leaves the body as
 * it was without MPIC.
 */
export function caRequestBody(
  input: CertificateRequestInput,
  falcon?: FalconBackend,
  dcv?: readonly Uint8Array[],
): Uint8Array {
  const request = parseCertificateRequest(input, falcon === undefined ? {} : { falcon });
  if (dcv !== undefined && dcv.length > MAX_DCV_ATTESTATIONS) {
    throw new CaModuleError(
      CaModuleErrorCode.DCV_INVALID,
      `${dcv.length} DCV attestations, more than ${MAX_DCV_ATTESTATIONS}`,
    );
  }
  return encodeCaBody({
    op: 'request',
    request: encodeCertificateRequest(request),
    ...(dcv === undefined || dcv.length === 0 ? {} : { dcv }),
  });
}

/**
 * A `renew` body. `request` only for a genesis bootstrap certificate, which has no committed
 * request to re-issue: `genesisRenewalRequest` builds it from the certificate and its keys. It
 * is parsed first (stateless checks); throws `CaError`.
 */
export function caRenewBody(
  serial: Uint8Array,
  lifetimeSeconds?: number,
  request?: CertificateRequestInput,
  falcon?: FalconBackend,
): Uint8Array {
  return encodeCaBody({
    op: 'renew',
    serial,
    lifetimeSeconds: lifetimeSeconds ?? null,
    ...(request === undefined
      ? {}
      : {
          request: encodeCertificateRequest(
            parseCertificateRequest(request, falcon === undefined ? {} : { falcon }),
          ),
        }),
  });
}

/** A `revoke` body; `proof` from `signRevocation` when the sender is not the requesting account. */
export function caRevokeBody(serial: Uint8Array, reason: number, proof?: Uint8Array): Uint8Array {
  return encodeCaBody({ op: 'revoke', serial, reason, proof: proof ?? null });
}

/** The subject key holder's signature for `caRevokeBody` (Ed25519, ECDSA P-256/SHA-256 DER, RSA PKCS#1 v1.5/SHA-256). */
export function signRevocation(
  subjectPrivateKey: KeyObject,
  chainId: string,
  serial: Uint8Array,
  reason: number,
): Uint8Array {
  const message = revocationMessage(chainId, serial, reason);
  const type = subjectPrivateKey.asymmetricKeyType;
  if (type === 'ed25519') return new Uint8Array(signWithKey(null, message, subjectPrivateKey));
  if (type === 'ec') {
    return new Uint8Array(
      signWithKey('sha256', message, { key: subjectPrivateKey, dsaEncoding: 'der' }),
    );
  }
  return new Uint8Array(signWithKey('sha256', message, subjectPrivateKey));
}

/** A signed, stamped `ca` `request` transaction (the caller supplies the sender's next sequence). */
export function buildCaRequestTransaction(options: {
  readonly chainId: string;
  readonly privateKey: KeyObject;
  readonly sequence: number;
  readonly stampDifficulty: number;
  readonly request: CertificateRequestInput;
  readonly falcon?: FalconBackend;
  /** Encoded DCV attestations (dcv.ts) for the request's DNS names and IP addresses. */
  readonly dcv?: readonly Uint8Array[];
}): BuiltTransaction {
  return buildTransaction({
    chainId: options.chainId,
    privateKey: options.privateKey,
    sequence: options.sequence,
    module: CA_MODULE_NAME,
    body: caRequestBody(options.request, options.falcon, options.dcv),
    stampDifficulty: options.stampDifficulty,
  });
}

/** The query `ca/<path>` with `data`. */
export function caQuery(
  path: keyof typeof CA_QUERIES,
  data: Uint8Array,
  height?: number,
): QueryRequest {
  const request = { path: `${CA_MODULE_NAME}/${CA_QUERIES[path]}`, data };
  return height === undefined ? request : { ...request, height };
}

/**
 * The value of a `ca` query answer after checking its proof for `key` (module-relative) against
 * `response.stateRoot` — the root the node names. On its own this proves nothing against a node
 * that lies (it can root a proof of any value at a root of its making): a caller that does not
 * trust the node reads through `readCaValue` with a `CaAnswerCheck`.
 */
export function verifiedCaValue(key: Uint8Array, response: QueryResponse): Uint8Array | null {
  if (response.proof === undefined) {
    throw new CaStateError('CA_CORRUPT_STATE', 'the ca query answer carries no proof');
  }
  const proof = decodeStateProof(response.proof);
  if (!verifyStateProof(response.stateRoot, caStateKey(key), response.value, proof)) {
    throw new CaStateError(
      'CA_CORRUPT_STATE',
      "the ca query answer's proof does not verify against its state root",
    );
  }
  return response.value;
}

/**
 * What a reader asks of each `ca` answer once its proof verifies against the root it names:
 * for a node the caller does not trust, that the answer is of the height `request` pinned (if
 * any) and that its state root is the one the validator quorum committed at that height (the
 * node layer's `committedCaCheck`). Resolves, or rejects with the refusal.
 */
export type CaAnswerCheck = (request: QueryRequest, response: QueryResponse) => Promise<void>;

type Query = (request: QueryRequest) => QueryResponse | Promise<QueryResponse>;

/**
 * Asks `request` and returns the value at `key` (module-relative) with the height it was read
 * at: the proof checked against the answer's root, then `check` (without one the root is the
 * node's word, which only a caller reading its own node's state may take). An answer of
 * another height than `request` pinned is refused (`CaStateError CA_CORRUPT_STATE`).
 */
export async function readCaValue(
  query: Query,
  request: QueryRequest,
  key: Uint8Array,
  check?: CaAnswerCheck,
): Promise<{ readonly value: Uint8Array | null; readonly height: number | null }> {
  const response = await query(request);
  const value = verifiedCaValue(key, response);
  await check?.(request, response);
  if (request.height !== undefined && response.height !== request.height) {
    throw new CaStateError(
      'CA_CORRUPT_STATE',
      `the ca query asked for height ${request.height} was answered at height ${response.height ?? '-'}`,
    );
  }
  return { value, height: response.height };
}

export type IssuanceStatus =
  | { readonly status: 'unknown' }
  | { readonly status: 'pending'; readonly serial: Uint8Array; readonly height: number }
  | {
      readonly status: 'published';
      readonly serial: Uint8Array;
      readonly height: number;
      readonly certificate: Uint8Array;
      readonly issuer: string;
      readonly publishedAt: number;
      readonly revocation: RevocationRecord | null;
    };

/**
 * The outcome of the issuance transaction `txHash` (a `request` or `renew`): unknown (not
 * committed, or refused), pending (committed, waiting for publication) or published, with the
 * certificate and its revocation if any. The certificate and revocation are read at the height
 * the request record was (one state, so an old height's "not revoked" cannot be mixed in).
 * Every answer's state proof is checked against the state root it names, and each answer is
 * then given to `check`: a caller that does not trust the node passes the node layer's
 * `committedCaCheck`, which holds each root to a committed header; without a check the roots
 * are the node's word (fit only for a node reading its own state).
 */
export async function findPublishedCertificate(
  query: Query,
  txHash: Uint8Array,
  check?: CaAnswerCheck,
): Promise<IssuanceStatus> {
  const requestAnswer = await readCaValue(
    query,
    caQuery('request', txHash),
    requestKey(txHash),
    check,
  );
  const record = requestAnswer.value;
  if (record === null) return { status: 'unknown' };
  const height = requestAnswer.height ?? undefined;
  const issuance = decodeIssuance(record);
  const read = async (name: 'certificate' | 'revocation', key: Uint8Array) =>
    (await readCaValue(query, caQuery(name, issuance.serial, height), key, check)).value;
  const stored = await read('certificate', certificateKey(issuance.serial));
  if (stored === null)
    return { status: 'pending', serial: issuance.serial, height: issuance.height };
  const certificate = decodeCertificateRecord(stored);
  const revoked = await read('revocation', revocationKey(issuance.serial));
  return {
    status: 'published',
    serial: issuance.serial,
    height: issuance.height,
    certificate: certificate.der,
    issuer: certificate.issuer,
    publishedAt: certificate.publishedAt,
    revocation: revoked === null ? null : decodeRevocation(revoked),
  };
}

/** The PEM chain a TLS server sends: the certificate, then its issuer's intermediate. */
export function certificateChainPem(
  bundle: TrustBundle,
  certificate: Uint8Array,
  issuer: string,
): string {
  const intermediate = bundle.validators.find((validator) => validator.name === issuer);
  if (intermediate === undefined)
    throw new RangeError(`no intermediate "${issuer}" in the trust bundle`);
  return derToPem(certificate) + derToPem(intermediate.certificate);
}
