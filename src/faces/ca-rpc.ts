import { z } from 'zod';
import { bytes } from '../codec/schema.js';
import { decodeTransaction, MAX_TRANSACTION_BYTES } from '../consensus/application/index.js';
import type { QueryRequest, QueryResponse } from '../consensus/app.js';
import type { MempoolAddResult } from '../consensus/mempool.js';
import { submitterOf, type ServiceRegistry } from '../consensus/net/index.js';
import {
  CA_MODULE_NAME,
  CaStateReader,
  caQuery,
  decodeCaBody,
  findPublishedCertificate,
  verifiedCaValue,
  type IssuanceStatus,
} from '../trustchain/ca-module/index.js';
import { serialKey } from '../trustchain/ca-module/state.js';
import {
  StoqError,
  StoqErrorCode,
  defineService,
  unary,
  type PeerIdentity,
} from '../stoq/index.js';
import { PeerBudget } from '../stoq/rpc/peer-budget.js';

/**
 * The TrustChain CA's RPC face (`hypermesh.trustchain.ca.v1`, docs/ca.md "RPC"), served by
 * every node with a `ca` genesis next to the node API:
 *
 * - `issue`, `renew`, `revoke`: admit a `ca` transaction the client built and signed (the
 *   account's signature and the module's policy decide what it may do, not the caller's role);
 *   each method accepts only its own operation.
 * - `get`: the issuance of a serial or transaction hash as the proven query answers, read at one
 *   height (`verifyCaGet` checks them).
 * - `validate`: chain to the trust bundle, committed revocation state, inclusion in the node's
 *   CT log and the consensus reference (the node's view; the proofs let a client re-check it).
 *   Budgeted per identity (`DEFAULT_VALIDATE_RATE_PER_IDENTITY`, reason `validate-rate`).
 * - `sth`, `inclusionProof`, `consistencyProof`: the node's transparency log (docs/ct.md).
 *
 * - `corroborate`: multi-perspective validation (docs/acme.md, "Multi-perspective validation"):
 *   the node checks an ACME challenge from its own vantage point and answers a DCV attestation
 *   signed with its node key (ok or not). Only validators and nodes of the cluster may ask.
 *
 * Reading is open to every authenticated role; submitting is open to nodes and clients (a
 * validator submits its own transactions locally).
 */
export const CA_SERVICE_NAME = 'hypermesh.trustchain.ca.v1';

const readers = ['validator', 'node', 'client'] as const;
const cluster = ['validator', 'node'] as const;
const submitters = ['node', 'client'] as const;
const hash = bytes({ length: 32 });
const serial = bytes({ length: 16 });
const uint = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const MAX_PROOF_BYTES = 64 * 1024;
const MAX_CERTIFICATE_BYTES = 64 * 1024;
const MAX_AUDIT_PATH = 64;

const submitRequest = z.strictObject({ tx: bytes({ min: 1, max: MAX_TRANSACTION_BYTES }) });
const submitResponse = z.strictObject({
  accepted: z.boolean(),
  txHash: hash.nullable(),
  code: z.string().max(128).nullable(),
  message: z.string().max(4096).nullable(),
});
const queryName = z.enum(['serial', 'request', 'certificate', 'revocation']);
const provenAnswer = z.strictObject({
  query: queryName,
  data: bytes({ max: 64 }),
  height: uint.nullable(),
  value: bytes({ max: MAX_PROOF_BYTES }).nullable(),
  proof: bytes({ max: MAX_PROOF_BYTES }),
  stateRoot: hash,
});
export type CaProvenAnswer = z.infer<typeof provenAnswer>;

const revocationView = z.strictObject({
  status: z.enum(['good', 'revoked', 'unknown']),
  reason: uint.nullable(),
  /** Revocation time (ms, the block time of the revocation). */
  time: uint.nullable(),
  height: uint.nullable(),
});
const transparencyView = z.strictObject({
  treeSize: uint,
  leafIndex: uint,
  auditPath: z.array(hash).max(MAX_AUDIT_PATH),
  rootHash: hash,
  /** The latest signed checkpoint (C2SP note), when it covers `treeSize`. */
  checkpoint: z
    .string()
    .max(64 * 1024)
    .nullable(),
});
const consensusView = z.strictObject({
  chainId: z.string().max(64),
  /** Height of the block that committed the issuance request (the certificate's reference). */
  height: uint,
  txHash: hash,
  /** Height of the block that published it, or null when the state does not hold it. */
  publishedAt: uint.nullable(),
  /** Proven `certificate` and `revocation` answers for the serial, at one height. */
  answers: z.array(provenAnswer).max(4),
});

export const CA_VALIDATE_PURPOSES = ['serverAuth', 'clientAuth', 'any'] as const;

/** Largest encoded DCV attestation a `corroborate` answer carries (dcv.ts). */
const MAX_ATTESTATION_BYTES = 1024;
const corroborateRequest = z.strictObject({
  /** The ACME account that will send the request (its Ed25519 public key). */
  account: bytes({ length: 32 }),
  identifier: z.strictObject({
    type: z.enum(['dns', 'ip']),
    value: z.string().min(1).max(253),
  }),
  method: z.enum(['http-01', 'dns-01', 'tls-alpn-01']),
  /** The challenge token (RFC 8555 §8.1: base64url, at least 128 bits). */
  token: z
    .string()
    .min(22)
    .max(128)
    .regex(/^[A-Za-z0-9_-]+$/, 'a base64url token'),
  /** `token || '.' || thumbprint`. */
  keyAuthorization: z.string().min(24).max(256),
  /**
   * The asker's committed height: a node behind it first waits (within its validation timeout)
   * to commit it, so dns-01 sees the records the asker saw.
   */
  height: uint.optional(),
  /**
   * For the CAA check each perspective runs with the challenge (docs/acme.md): the
   * authorization is for `*.<identifier>` (CAA `issuewild`; default false), and the ACME
   * account URL RFC 8657 `accounturi` parameters are matched against (absent: a record with
   * `accounturi` does not match).
   */
  wildcard: z.boolean().optional(),
  accountUri: z.string().min(1).max(2048).optional(),
});
export type CaCorroborateRequest = z.infer<typeof corroborateRequest>;

export const caService = defineService({
  name: CA_SERVICE_NAME,
  methods: {
    issue: unary({ request: submitRequest, response: submitResponse, allow: submitters }),
    renew: unary({ request: submitRequest, response: submitResponse, allow: submitters }),
    revoke: unary({ request: submitRequest, response: submitResponse, allow: submitters }),
    get: unary({
      request: z
        .strictObject({ serial: serial.optional(), txHash: hash.optional() })
        .refine((r) => (r.serial === undefined) !== (r.txHash === undefined), {
          message: 'give exactly one of serial and txHash',
        }),
      response: z.strictObject({ answers: z.array(provenAnswer).min(1).max(4) }),
      allow: readers,
    }),
    validate: unary({
      request: z.strictObject({
        certificate: bytes({ min: 1, max: MAX_CERTIFICATE_BYTES }),
        purpose: z.enum(CA_VALIDATE_PURPOSES).optional(),
      }),
      response: z.strictObject({
        valid: z.boolean(),
        /** The first failure: a `VerifyFailure`, `revoked`, `not_published` or `not_in_log`. */
        reason: z.string().max(64).nullable(),
        message: z.string().max(4096).nullable(),
        serial: serial.nullable(),
        issuer: z.string().max(256).nullable(),
        revocation: revocationView.nullable(),
        transparency: transparencyView.nullable(),
        consensus: consensusView.nullable(),
      }),
      allow: readers,
    }),
    corroborate: unary({
      request: corroborateRequest,
      response: z.strictObject({ attestation: bytes({ min: 1, max: MAX_ATTESTATION_BYTES }) }),
      allow: cluster,
    }),
    sth: unary({
      request: z.strictObject({}),
      response: z.strictObject({
        treeSize: uint,
        timestamp: uint,
        rootHash: hash,
        checkpoint: z
          .string()
          .max(64 * 1024)
          .nullable(),
      }),
      allow: readers,
    }),
    inclusionProof: unary({
      request: z.strictObject({ leafHash: hash, treeSize: uint.optional() }),
      response: z.strictObject({
        leafIndex: uint,
        treeSize: uint,
        auditPath: z.array(hash).max(MAX_AUDIT_PATH),
      }),
      allow: readers,
    }),
    consistencyProof: unary({
      request: z.strictObject({ first: uint.min(1), second: uint }),
      response: z.strictObject({ proof: z.array(hash).max(MAX_AUDIT_PATH) }),
      allow: readers,
    }),
  },
});

export type CaRpcService = typeof caService;
export type CaValidateRequest = z.infer<(typeof caService.methods.validate)['request']>;
export type CaValidateResponse = z.infer<(typeof caService.methods.validate)['response']>;
export type CaSthResponse = z.infer<(typeof caService.methods.sth)['response']>;

/** What the face reads and where it submits (src/node/ca-service.ts provides it). */
export interface CaRpcSource {
  /**
   * Client admission, as the node API's `submitTx`; `caller` is the client's identity URI (the
   * intake queue's per-caller share).
   */
  submit(tx: Uint8Array, caller?: string): Promise<MempoolAddResult>;
  /** The application's query (answers with proofs). */
  query(request: QueryRequest): QueryResponse;
  validate(request: CaValidateRequest): CaValidateResponse;
  /** Throws StoqError UNAVAILABLE before the log has a tree head. */
  sth(): CaSthResponse;
  /** Throws StoqError NOT_FOUND / INVALID_ARGUMENT. */
  inclusionProof(
    leafHash: Uint8Array,
    treeSize: number | undefined,
  ): { leafIndex: number; treeSize: number; auditPath: Uint8Array[] };
  consistencyProof(first: number, second: number): Uint8Array[];
  /**
   * Checks an ACME challenge and answers the signed DCV attestation; throws a StoqError
   * (UNAVAILABLE when this node does not validate, INVALID_ARGUMENT, RESOURCE_EXHAUSTED).
   */
  corroborate(
    request: CaCorroborateRequest,
    caller: Pick<PeerIdentity, 'role' | 'name' | 'uri'>,
    /** Aborted when the caller cancels or its deadline passes: the work stops, its slot frees. */
    signal?: AbortSignal,
  ): Promise<Uint8Array>;
}

type SubmitOp = 'request' | 'renew' | 'revoke';

async function submitOp(
  source: CaRpcSource,
  op: SubmitOp,
  tx: Uint8Array,
  caller: string,
): Promise<z.infer<typeof submitResponse>> {
  let module: string;
  let body: Uint8Array;
  try {
    ({ module, body } = decodeTransaction(tx));
  } catch (error) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `not a transaction: ${(error as Error).message}`,
    );
  }
  let actual: string;
  try {
    if (module !== CA_MODULE_NAME) throw new RangeError(`module ${module}`);
    actual = decodeCaBody(body).op;
  } catch (error) {
    throw new StoqError(
      StoqErrorCode.INVALID_ARGUMENT,
      `not a ca transaction: ${(error as Error).message}`,
    );
  }
  if (actual !== op) {
    throw new StoqError(StoqErrorCode.INVALID_ARGUMENT, `expected a ca/${op}, got ca/${actual}`);
  }
  const result = await source.submit(tx, caller);
  return result.ok
    ? { accepted: true, txHash: result.txHash, code: null, message: null }
    : {
        accepted: false,
        txHash: result.txHash ?? null,
        code: result.code,
        message: result.message,
      };
}

function answer(
  query: CaProvenAnswer['query'],
  data: Uint8Array,
  response: QueryResponse,
): CaProvenAnswer {
  if (response.proof === undefined) {
    throw new StoqError(StoqErrorCode.INTERNAL, 'the ca query answered without a proof');
  }
  return {
    query,
    data,
    height: response.height,
    value: response.value,
    proof: response.proof,
    stateRoot: response.stateRoot,
  };
}

/**
 * The proven answers for one issuance, all at one height: for a serial, `serial` first (the
 * issuance txHash), then `request`, `certificate` and `revocation`.
 */
export function caGetAnswers(
  query: (request: QueryRequest) => QueryResponse,
  by: { serial?: Uint8Array; txHash?: Uint8Array },
): CaProvenAnswer[] {
  const answers: CaProvenAnswer[] = [];
  let txHash = by.txHash;
  let height: number | undefined;
  if (by.serial !== undefined) {
    const found = query(caQuery('serial', by.serial));
    answers.push(answer('serial', by.serial, found));
    height = found.height ?? undefined;
    if (found.value === null) return answers;
    txHash = found.value;
  }
  if (txHash === undefined) return answers;
  const request = query(caQuery('request', txHash, height));
  answers.push(answer('request', txHash, request));
  height = request.height ?? undefined;
  if (request.value === null) return answers;
  const issuance = new CaStateReader({ get: () => request.value }).issuance(txHash);
  if (issuance === null) return answers;
  for (const name of ['certificate', 'revocation'] as const) {
    answers.push(answer(name, issuance.serial, query(caQuery(name, issuance.serial, height))));
  }
  return answers;
}

/**
 * Checks `get` answers (every proof against its state root, one state root for all) and returns
 * the issuance status they prove. Throws `CaStateError` when a proof fails.
 */
export async function verifyCaGet(
  answers: readonly CaProvenAnswer[],
  by: { serial?: Uint8Array; txHash?: Uint8Array },
): Promise<IssuanceStatus> {
  const roots = new Set(answers.map((a) => Buffer.from(a.stateRoot).toString('hex')));
  if (roots.size > 1) throw new StoqError(StoqErrorCode.INTERNAL, 'answers from several states');
  const lookup = (name: CaProvenAnswer['query'], data: Uint8Array): QueryResponse => {
    const found = answers.find(
      (a) => a.query === name && Buffer.from(a.data).equals(Buffer.from(data)),
    );
    if (found === undefined) {
      throw new StoqError(StoqErrorCode.INTERNAL, `the answers lack the ${name} query`);
    }
    return {
      height: found.height,
      value: found.value,
      proof: found.proof,
      stateRoot: found.stateRoot,
    };
  };
  let txHash = by.txHash;
  if (by.serial !== undefined) {
    txHash = verifiedCaValue(serialKey(by.serial), lookup('serial', by.serial)) ?? undefined;
    if (txHash === undefined) return { status: 'unknown' };
  }
  if (txHash === undefined) return { status: 'unknown' };
  return findPublishedCertificate((request) => {
    const name = request.path.slice(CA_MODULE_NAME.length + 1) as CaProvenAnswer['query'];
    return lookup(name, request.data);
  }, txHash);
}

/**
 * `validate` calls one authenticated identity (certificate URI) may make per second, and at once
 * after a pause (the bucket's size); one more is refused with RESOURCE_EXHAUSTED, reason
 * `validate-rate`. One call costs an X.509 parse per intermediate of the bundle, a P-256 chain
 * verification, a FALCON-1024 verification, two proven state reads and a CT audit path, all on
 * the node's event loop: without a budget one client looping it would keep the node busy.
 */
export const DEFAULT_VALIDATE_RATE_PER_IDENTITY = 20;
export const DEFAULT_VALIDATE_BURST_PER_IDENTITY = 40;

export interface CaRpcOptions {
  /** Default `DEFAULT_VALIDATE_RATE_PER_IDENTITY`. */
  readonly validateRatePerIdentity?: number;
  /** Default `DEFAULT_VALIDATE_BURST_PER_IDENTITY`. */
  readonly validateBurstPerIdentity?: number;
  /** Milliseconds of a monotonic clock, for the validate budget (default `performance.now`). */
  readonly now?: () => number;
}

/** Registers `hypermesh.trustchain.ca.v1` on `rpc`; `counted` sees every log proof request. */
export function registerCaRpc(
  rpc: ServiceRegistry,
  source: CaRpcSource,
  counted: (kind: 'sth' | 'inclusion' | 'consistency') => void = () => undefined,
  options: CaRpcOptions = {},
): void {
  const validateRate = options.validateRatePerIdentity ?? DEFAULT_VALIDATE_RATE_PER_IDENTITY;
  const validateBudget = new PeerBudget(
    validateRate,
    options.validateBurstPerIdentity ?? DEFAULT_VALIDATE_BURST_PER_IDENTITY,
    options.now ?? (() => performance.now()),
  );
  rpc.register(caService, {
    issue: (request, ctx) => submitOp(source, 'request', request.tx, submitterOf(ctx.peer)),
    renew: (request, ctx) => submitOp(source, 'renew', request.tx, submitterOf(ctx.peer)),
    revoke: (request, ctx) => submitOp(source, 'revoke', request.tx, submitterOf(ctx.peer)),
    get: (request) => ({ answers: caGetAnswers((q) => source.query(q), request) }),
    validate: (request, ctx) => {
      if (!validateBudget.take(ctx.peer.uri)) {
        throw new StoqError(
          StoqErrorCode.RESOURCE_EXHAUSTED,
          `${ctx.peer.name} called validate more often than this node answers one identity`,
          { reason: 'validate-rate', ratePerSecond: validateRate },
        );
      }
      return source.validate(request);
    },
    corroborate: async (request, ctx) => ({
      attestation: await source.corroborate(request, ctx.peer, ctx.signal),
    }),
    sth: () => {
      counted('sth');
      return source.sth();
    },
    inclusionProof: (request) => {
      counted('inclusion');
      return source.inclusionProof(request.leafHash, request.treeSize);
    },
    consistencyProof: (request) => {
      counted('consistency');
      return { proof: source.consistencyProof(request.first, request.second) };
    },
  });
}
