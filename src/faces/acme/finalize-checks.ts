import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import type { ParsedCsr } from '../../trustchain/ca/csr.js';
import { identifierKeys } from './identifiers.js';
import { AcmeIssuerError, AcmeIssuerErrorCode } from './issuer.js';
import { ProblemType, problem, type AcmeIdentifier, type AcmeProblem } from './problems.js';

/**
 * §7.4: the CSR must name exactly the order's identifiers — its subjectAltName dNSNames and
 * iPAddresses, plus the commonName if it has one — and nothing else.
 */
export function checkCsrIdentifiers(csr: ParsedCsr, identifiers: readonly AcmeIdentifier[]): void {
  const names = csr.requestedNames;
  if (names !== null && (names.uris.length > 0 || names.otherNames > 0)) {
    throw problem(
      ProblemType.badCSR,
      'the CSR requests names other than DNS names and IP addresses',
    );
  }
  const inCsr: AcmeIdentifier[] = [
    ...(names?.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(names?.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (csr.commonName !== null) {
    inCsr.push({ type: isIP(csr.commonName) === 0 ? 'dns' : 'ip', value: csr.commonName });
  }
  const csrKeys = [...new Set(identifierKeys(inCsr))];
  const orderKeys = identifierKeys(identifiers);
  if (csrKeys.length !== orderKeys.length || csrKeys.some((key, i) => key !== orderKeys[i])) {
    throw problem(
      ProblemType.badCSR,
      `the CSR names ${csrKeys.join(', ') || 'nothing'}; the order is for ${orderKeys.join(', ')}`,
    );
  }
}

/**
 * The CSR's key must not be the account's own key (as Boulder refuses): a certificate for it
 * would let whoever gets the certificate's key control the account, and one key would serve two
 * purposes. Compared as SubjectPublicKeyInfo DER, so every key type counts.
 */
export function checkCsrKeyIsNotAccountKey(csr: ParsedCsr, accountKey: KeyObject): void {
  const spki = (key: KeyObject): Buffer => key.export({ format: 'der', type: 'spki' });
  if (spki(csr.publicKey).equals(spki(accountKey))) {
    throw problem(ProblemType.badCSR, "the CSR's public key is the account's key");
  }
}

/** The problem an order records when its issuance fails. */
export function issuanceProblem(error: unknown): AcmeProblem {
  if (error instanceof AcmeIssuerError) {
    if (error.code === AcmeIssuerErrorCode.BAD_CSR)
      return problem(ProblemType.badCSR, error.message);
    if (error.code === AcmeIssuerErrorCode.REJECTED_IDENTIFIER) {
      return problem(ProblemType.rejectedIdentifier, error.message);
    }
    if (error.code === AcmeIssuerErrorCode.UNAUTHORIZED) {
      return problem(ProblemType.unauthorized, error.message);
    }
    if (error.code === AcmeIssuerErrorCode.RATE_LIMITED) {
      return problem(ProblemType.rateLimited, error.message);
    }
    return problem(ProblemType.serverInternal, `the CA could not issue: ${error.message}`);
  }
  return problem(ProblemType.serverInternal, 'the CA could not issue the certificate');
}
