import type { DcvElectorate } from '../../trustchain/ca-module/dcv.js';
import type { ChallengeType } from './identifiers.js';
import type { AcmeIdentifier } from './problems.js';

/**
 * Multi-perspective issuance corroboration (docs/acme.md, "Multi-perspective validation"): after
 * a challenge validates locally, the server asks the CA's validators to check it again from
 * their own vantage points. What the node supplies (src/node/acme-mpic.ts); the server only
 * counts (with the `ca` module's rule, `dcvQuorum`) and stores what comes back.
 */
export interface AcmeCorroboration {
  /** How many validators (the CA's current intermediate holders) were asked. */
  readonly holders: number;
  /**
   * The committed validator set with its voting powers (`readDcvElectorate`): the attestations'
   * validators must hold more than 2/3 of it, as the `ca` module will require.
   */
  readonly electorate: DcvElectorate;
  /**
   * The attestations that say the challenge is met, each with the key of the validator that
   * signed it (32 bytes); the server counts distinct validators.
   */
  readonly attestations: ReadonlyArray<{
    readonly validator: Uint8Array;
    readonly bytes: Uint8Array;
  }>;
}

/**
 * What the validators need beyond the challenge for their CAA check (RFC 8659, RFC 8657), and
 * how long the server waits for them.
 */
export interface AcmeCorroborationContext {
  /** The authorization is for the wildcard `*.<identifier>` (CAA `issuewild`). */
  readonly wildcard: boolean;
  /** The ACME account URL (RFC 8657 §3 `accounturi`). */
  readonly accountUri: string;
  /**
   * What is left of the validation's deadline: the server stops waiting then (the attestations
   * not in by then do not count), so the collector need not wait longer.
   */
  readonly deadlineMs?: number;
}

/** Asks every validator to check one challenge; never rejects for what a validator answers. */
export type AcmeCorroborate = (
  identifier: AcmeIdentifier,
  method: ChallengeType,
  token: string,
  keyAuthorization: string,
  context?: AcmeCorroborationContext,
) => Promise<AcmeCorroboration>;

export type AcmeMpicOutcome = 'corroborated' | 'refused';
