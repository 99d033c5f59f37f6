import type { RateLimit } from '../trustchain/ca/rate-limit.js';
import { DEFAULT_RATE_LIMIT, RATE_LIMIT_BOUNDS } from '../trustchain/ca-module/config.js';
import { CliError } from './cli-error.js';

/**
 * `cluster init --ca-rate-limit COUNT/SECONDS`: the TrustChain CA's per-account issuance limit
 * written into the genesis (`app.ca.rateLimit`, docs/ca.md). Without it the genesis has none and
 * the CA applies `DEFAULT_RATE_LIMIT`.
 *
 * The upper bounds are those of the `app.ca` schema (src/trustchain/ca-module/config.ts
 * `RATE_LIMIT_BOUNDS`). COUNT starts at 1 here, where the schema allows 0:
 * a limit of 0 would refuse every issuance, which no cluster is created to do.
 */
export const CA_RATE_LIMIT_BOUNDS = Object.freeze({
  count: Object.freeze({ min: 1, max: RATE_LIMIT_BOUNDS.maxIssuances }),
  seconds: Object.freeze({ min: 1, max: RATE_LIMIT_BOUNDS.maxWindowSeconds }),
});

const FLAG = '--ca-rate-limit';
const EXAMPLE = `e.g. 1000/3600; default ${DEFAULT_RATE_LIMIT.max}/${DEFAULT_RATE_LIMIT.windowSeconds}`;
const PARTS = {
  COUNT: { bounds: CA_RATE_LIMIT_BOUNDS.count, what: 'certificates per account' },
  SECONDS: { bounds: CA_RATE_LIMIT_BOUNDS.seconds, what: 'window length in seconds' },
} as const;

/** Refuses one part of the limit unless it is an integer within its bounds. */
function checkPart(part: keyof typeof PARTS, value: number, text: string, shown: string): void {
  const { bounds, what } = PARTS[part];
  if (!Number.isSafeInteger(value) || value < bounds.min || value > bounds.max) {
    throw new CliError(
      `${FLAG} ${shown}: ${part} (${what}) must be an integer from ${bounds.min} to ${bounds.max}, got ${JSON.stringify(text)}`,
    );
  }
}

/** Checks a rate limit given to `initCluster`; throws a CliError naming `--ca-rate-limit`. */
export function checkCaRateLimit(limit: RateLimit): void {
  const shown = `${String(limit.max)}/${String(limit.windowSeconds)}`;
  checkPart('COUNT', limit.max, String(limit.max), shown);
  checkPart('SECONDS', limit.windowSeconds, String(limit.windowSeconds), shown);
}

/** Parses `--ca-rate-limit COUNT/SECONDS` (both decimal integers: digits only, no sign). */
export function parseCaRateLimit(text: string): RateLimit {
  const shown = JSON.stringify(text);
  const match = /^([^/]*)\/([^/]*)$/.exec(text);
  if (match === null) {
    throw new CliError(
      `${FLAG} must be COUNT/SECONDS (certificates per account per window of SECONDS), ${EXAMPLE}; got ${shown}`,
    );
  }
  const [, count, seconds] = match as unknown as [string, string, string];
  const number = (digits: string): number => (/^[0-9]+$/.test(digits) ? Number(digits) : NaN);
  checkPart('COUNT', number(count), count, shown);
  checkPart('SECONDS', number(seconds), seconds, shown);
  return { max: Number(count), windowSeconds: Number(seconds) };
}
