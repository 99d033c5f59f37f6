import { HyperMeshError } from '../../codec/error.js';

/**
 * RFC 8555 §6.7 error types. Every refusal the ACME server sends is a problem document
 * (RFC 7807, `application/problem+json`) with one of these types and the HTTP status below.
 */
export enum ProblemType {
  accountDoesNotExist = 'accountDoesNotExist',
  /** RFC 9773 §5: a newOrder `replaces` a certificate another live order already replaces. */
  alreadyReplaced = 'alreadyReplaced',
  alreadyRevoked = 'alreadyRevoked',
  badCSR = 'badCSR',
  badNonce = 'badNonce',
  badPublicKey = 'badPublicKey',
  badRevocationReason = 'badRevocationReason',
  badSignatureAlgorithm = 'badSignatureAlgorithm',
  /** RFC 8555 §6.7: CAA records forbid the CA from issuing for at least one identifier. */
  caa = 'caa',
  connection = 'connection',
  dns = 'dns',
  incorrectResponse = 'incorrectResponse',
  invalidContact = 'invalidContact',
  malformed = 'malformed',
  orderNotReady = 'orderNotReady',
  /** RFC 8555 §6.6: a limit of the server is reached; the reply carries Retry-After when waiting helps. */
  rateLimited = 'rateLimited',
  rejectedIdentifier = 'rejectedIdentifier',
  serverInternal = 'serverInternal',
  tls = 'tls',
  unauthorized = 'unauthorized',
  unsupportedContact = 'unsupportedContact',
  unsupportedIdentifier = 'unsupportedIdentifier',
}

export const PROBLEM_PREFIX = 'urn:ietf:params:acme:error:';

/** The HTTP status each type is sent with (as Boulder and Pebble do where RFC 8555 is silent). */
export const PROBLEM_STATUS: Readonly<Record<ProblemType, number>> = {
  accountDoesNotExist: 400,
  alreadyReplaced: 409,
  alreadyRevoked: 400,
  badCSR: 400,
  badNonce: 400,
  badPublicKey: 400,
  badRevocationReason: 400,
  badSignatureAlgorithm: 400,
  caa: 403,
  connection: 400,
  dns: 400,
  incorrectResponse: 403,
  invalidContact: 400,
  malformed: 400,
  orderNotReady: 403,
  rateLimited: 429,
  rejectedIdentifier: 400,
  serverInternal: 500,
  tls: 400,
  unauthorized: 403,
  unsupportedContact: 400,
  unsupportedIdentifier: 400,
};

export interface AcmeIdentifier {
  readonly type: 'dns' | 'ip';
  readonly value: string;
}

/** The JSON body of a problem document. */
export interface ProblemDocument {
  readonly type: string;
  readonly detail: string;
  readonly status: number;
  readonly identifier?: AcmeIdentifier;
  readonly subproblems?: readonly ProblemDocument[];
  /** `badSignatureAlgorithm` only: the algorithms the server accepts (RFC 8555 §6.2). */
  readonly algorithms?: readonly string[];
}

export interface ProblemOptions {
  /** Overrides the type's default HTTP status (e.g. 404, 405, 413, 415 for `malformed`). */
  readonly status?: number;
  readonly identifier?: AcmeIdentifier;
  readonly subproblems?: readonly AcmeProblem[];
  readonly algorithms?: readonly string[];
  /** Extra response headers, e.g. `Allow` for 405 or `Location` for a 409. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A refusal the server turns into a problem document; `code` is the RFC 8555 type. */
export class AcmeProblem extends HyperMeshError<ProblemType> {
  readonly status: number;
  readonly options: ProblemOptions;

  constructor(type: ProblemType, message: string, options: ProblemOptions = {}) {
    super(type, message, { status: options.status ?? PROBLEM_STATUS[type] });
    this.status = options.status ?? PROBLEM_STATUS[type];
    this.options = options;
  }

  asDocument(): ProblemDocument {
    return {
      type: `${PROBLEM_PREFIX}${this.code}`,
      detail: this.message,
      status: this.status,
      ...(this.options.identifier === undefined ? {} : { identifier: this.options.identifier }),
      ...(this.options.subproblems === undefined
        ? {}
        : { subproblems: this.options.subproblems.map((problem) => problem.asDocument()) }),
      ...(this.options.algorithms === undefined ? {} : { algorithms: this.options.algorithms }),
    };
  }
}

export function problem(type: ProblemType, message: string, options?: ProblemOptions): AcmeProblem {
  return new AcmeProblem(type, message, options);
}

export const malformed = (message: string, options?: ProblemOptions): AcmeProblem =>
  new AcmeProblem(ProblemType.malformed, message, options);
