import { caaAllows, caaSearchDomains, type CaaRecord } from '../../trustchain/ca/caa.js';
import type { CaaResolver } from './caa-resolver.js';
import { DeadlineExpired, beforeDeadline, type Deadline } from './deadline.js';
import { AcmeError } from './errors.js';
import type { ChallengeType } from './identifiers.js';
import { ProblemType, problem, type AcmeIdentifier, type AcmeProblem } from './problems.js';

/**
 * The server's CAA check (RFC 8659; RFC 8657 `accounturi` and `validationmethods`): for one
 * authorization, find the Relevant RRset of its name — the wildcard form `*.name` for a
 * wildcard authorization — and ask the CA core's `caaAllows` whether any of `identities` (the
 * server's `caaIdentities`) may issue for it. Resolves to `null` when issuance may go ahead,
 * to a `caa` problem naming the identifier when the records forbid it, and to a `dns` problem
 * when a lookup fails (RFC 8659 §3 lets a CA proceed only when the failure is outside its own
 * infrastructure; the zones here are the CA's own, so a failure refuses) or when the climb has
 * not found the Relevant RRset by the caller's deadline (a name may have up to 127 labels, each
 * one a lookup).
 */

export interface CaaPolicy {
  readonly resolver: CaaResolver;
  /** Issuer domain names an `issue`/`issuewild` value must name (lowercase). */
  readonly identities: readonly string[];
}

export interface CaaCheckRequest {
  readonly identifier: AcmeIdentifier;
  readonly wildcard: boolean;
  /** The ACME account URL (RFC 8657 §3 `accounturi`). */
  readonly accountUri: string;
  /** The challenge that validated (or is validating) the authorization (RFC 8657 §4). */
  readonly validationMethod: ChallengeType | undefined;
}

/**
 * The Relevant RRset of `name` (RFC 8659 §3), looked up closest first, one lookup at a time;
 * throws `DeadlineExpired` (and looks nothing more up) once `deadline` has passed.
 */
async function relevantRecords(
  resolver: CaaResolver,
  name: string,
  deadline: Deadline | undefined,
): Promise<{ readonly domain: string; readonly records: readonly CaaRecord[] } | null> {
  for (const domain of caaSearchDomains(name)) {
    if (deadline?.signal.aborted === true) throw new DeadlineExpired(deadline.ms);
    const lookup = resolver.lookupCaa(domain);
    const records = await (deadline === undefined ? lookup : beforeDeadline(lookup, deadline));
    if (records.length > 0) return { domain, records };
  }
  return null;
}

/** The CAA check of one authorization; with `deadline`, the whole climb ends by it. */
export async function checkCaa(
  policy: CaaPolicy,
  request: CaaCheckRequest,
  deadline?: Deadline,
): Promise<AcmeProblem | null> {
  // CAA is defined for domain names only; RFC 8738 leaves IP identifiers without it.
  if (request.identifier.type !== 'dns') return null;
  const { identifier } = request;
  const name = request.wildcard ? `*.${identifier.value}` : identifier.value;
  let relevant: Awaited<ReturnType<typeof relevantRecords>>;
  try {
    relevant = await relevantRecords(policy.resolver, name, deadline);
  } catch (error) {
    if (error instanceof DeadlineExpired) {
      return problem(
        ProblemType.dns,
        `CAA lookups for ${name} did not finish within ${error.ms} ms`,
        { identifier },
      );
    }
    if (!(error instanceof AcmeError)) throw error;
    return problem(ProblemType.dns, `CAA lookup for ${name} failed: ${error.message}`, {
      identifier,
    });
  }
  if (relevant === null) return null;
  const decision = caaAllows(policy.identities, relevant.records, name, {
    accountUri: request.accountUri,
    ...(request.validationMethod === undefined
      ? {}
      : { validationMethod: request.validationMethod }),
  });
  if (decision.allowed) return null;
  const why =
    decision.reason === 'unknown_critical_property'
      ? `an unknown critical property ${JSON.stringify(decision.tag)}`
      : `no ${request.wildcard ? 'issuewild/issue' : 'issue'} property authorizing ${policy.identities.join(', ')} for this account and validation method`;
  return problem(
    ProblemType.caa,
    `CAA records at ${relevant.domain} forbid issuance for ${name}: ${why}`,
    { identifier },
  );
}

/**
 * One problem for an order with several refused identifiers: the single refusal itself, or a
 * `caa` problem with one subproblem per identifier (RFC 8555 §6.7.1; a failed lookup is a `dns`
 * subproblem).
 */
export function caaOrderProblem(refusals: readonly AcmeProblem[]): AcmeProblem {
  if (refusals.length === 1) return refusals[0] as AcmeProblem;
  const names = refusals.map((refusal) => refusal.options.identifier?.value ?? '?').join(', ');
  return problem(ProblemType.caa, `CAA records forbid issuance for ${names}`, {
    subproblems: refusals,
  });
}
