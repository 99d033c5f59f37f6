import { CaError } from '../../trustchain/ca/errors.js';
import {
  checkDnsName,
  checkIpAddress,
  ipInRange,
  isWildcard,
  isWithinZone,
  wildcardBase,
} from '../../trustchain/ca/names.js';
import type { AcmeProblem } from './problems.js';
import { ProblemType, problem, type AcmeIdentifier } from './problems.js';

/**
 * Order identifiers: `dns` names (RFC 8555 §7.1.3, §7.1.4) and `ip` addresses (RFC 8738). Names
 * are checked with the CA core's rules (src/trustchain/ca/names.ts) and never rewritten: an
 * upper-case name, a trailing dot or a non-canonical IPv6 address is refused rather than
 * silently changed into another name. A wildcard is only `*.` in front of at least two labels;
 * its authorization is for the base name and offers only dns-01 (§7.1.3). IP addresses are in
 * RFC 8738 §3 text form and offer http-01 and tls-alpn-01 (RFC 8738 §7: no dns-01 for
 * addresses). Other names offer all three.
 */

export const MAX_ORDER_IDENTIFIERS = 100;

export type ChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';

export interface IdentifierPolicy {
  /** DNS zones names must lie in (the zone and everything below it); all names when absent. */
  readonly dnsZones?: readonly string[];
  /** IP addresses or CIDR ranges; all addresses when absent. An empty list refuses every IP. */
  readonly ipRanges?: readonly string[];
  /** Whether wildcard names may be ordered (default true). */
  readonly wildcards?: boolean;
  /**
   * DNS names outside `dnsZones` may be ordered too (external domain names; the account's
   * grant has `externalDns`, docs/acme.md "External names"). Default false.
   */
  readonly externalDns?: boolean;
}

/** One authorization an order needs: the identifier (the base name for a wildcard). */
export interface AuthorizationTarget {
  readonly identifier: AcmeIdentifier;
  readonly wildcard: boolean;
  readonly challenges: readonly ChallengeType[];
}

function refusal(identifier: AcmeIdentifier, message: string): AcmeProblem {
  return problem(ProblemType.rejectedIdentifier, message, { identifier });
}

function checkOne(identifier: AcmeIdentifier, policy: IdentifierPolicy): AcmeProblem | null {
  try {
    if (identifier.type === 'dns') checkDnsName(identifier.value);
    else checkIpAddress(identifier.value);
  } catch (error) {
    if (error instanceof CaError) {
      return refusal(
        identifier,
        `${identifier.value} is not an acceptable ${identifier.type} identifier (${String(error.detail.reason)})`,
      );
    }
    throw error;
  }
  if (identifier.type === 'dns') {
    if (isWildcard(identifier.value) && policy.wildcards === false) {
      return refusal(identifier, `wildcard names are not issued here`);
    }
    const base = wildcardBase(identifier.value);
    if (
      policy.dnsZones !== undefined &&
      policy.externalDns !== true &&
      !policy.dnsZones.some((z) => isWithinZone(base, z))
    ) {
      return refusal(identifier, `${identifier.value} is not in a zone this server issues for`);
    }
  } else if (
    policy.ipRanges !== undefined &&
    !policy.ipRanges.some((range) => ipInRange(identifier.value, range))
  ) {
    return refusal(
      identifier,
      `${identifier.value} is not in an address range this server issues for`,
    );
  }
  return null;
}

/**
 * Checks an order's identifiers and returns one authorization target per identifier. Refuses
 * with `malformed` (none, too many, duplicates) or `rejectedIdentifier` with one subproblem per
 * refused identifier.
 */
export function checkOrderIdentifiers(
  identifiers: readonly AcmeIdentifier[],
  policy: IdentifierPolicy,
): AuthorizationTarget[] {
  if (identifiers.length === 0) {
    throw problem(ProblemType.malformed, 'an order needs at least one identifier');
  }
  if (identifiers.length > MAX_ORDER_IDENTIFIERS) {
    throw problem(
      ProblemType.rejectedIdentifier,
      `an order may name at most ${MAX_ORDER_IDENTIFIERS} identifiers`,
    );
  }
  const seen = new Set<string>();
  for (const identifier of identifiers) {
    const key = `${identifier.type}:${identifier.value}`;
    if (seen.has(key)) {
      throw problem(ProblemType.malformed, `identifier ${key} is listed twice`);
    }
    seen.add(key);
  }
  const refusals = identifiers
    .map((identifier) => checkOne(identifier, policy))
    .filter((refused): refused is AcmeProblem => refused !== null);
  if (refusals.length === 1) throw refusals[0] as AcmeProblem;
  if (refusals.length > 1) {
    throw problem(
      ProblemType.rejectedIdentifier,
      `${refusals.length} identifiers were refused; see subproblems`,
      { subproblems: refusals },
    );
  }
  return identifiers.map((identifier): AuthorizationTarget => {
    if (identifier.type === 'ip') {
      return { identifier, wildcard: false, challenges: ['http-01', 'tls-alpn-01'] };
    }
    if (isWildcard(identifier.value)) {
      return {
        identifier: { type: 'dns', value: wildcardBase(identifier.value) },
        wildcard: true,
        challenges: ['dns-01'],
      };
    }
    return { identifier, wildcard: false, challenges: ['http-01', 'dns-01', 'tls-alpn-01'] };
  });
}

/** Identifiers compared as sets: `type:value` strings, sorted. */
export function identifierKeys(identifiers: readonly AcmeIdentifier[]): string[] {
  return identifiers.map((identifier) => `${identifier.type}:${identifier.value}`).sort();
}
