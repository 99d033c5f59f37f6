import type { ModuleQueryAnswer } from '../consensus/application/module.js';
import { CaesarError, CaesarErrorCode } from './errors.js';
import { GOV_PARAMS_KEY } from './gov-params.js';
import {
  GOV_ACTIVE_KEY,
  GOV_COUNT_KEY,
  GOV_DEPOSITS_KEY,
  proposalIdFromBytes,
  proposalKey,
  votesKey,
} from './gov-state.js';

/** Governance query paths of the module (`caesar/<path>`), each answered by one proven key. */
export const GOV_PARAMS_QUERY = 'gov-params';
export const GOV_PROPOSAL_QUERY = 'gov-proposal';
export const GOV_VOTES_QUERY = 'gov-votes';
export const GOV_COUNT_QUERY = 'gov-count';
export const GOV_ACTIVE_QUERY = 'gov-active';
export const GOV_DEPOSITS_QUERY = 'gov-deposits';

/**
 * The paths answered by one fixed key. A Map, not an object literal: the path is untrusted, and
 * a plain object would also answer `constructor`, `toString` or `__proto__` from its prototype.
 */
const NO_DATA: ReadonlyMap<string, Uint8Array> = new Map([
  [GOV_PARAMS_QUERY, GOV_PARAMS_KEY],
  [GOV_COUNT_QUERY, GOV_COUNT_KEY],
  [GOV_ACTIVE_QUERY, GOV_ACTIVE_KEY],
  [GOV_DEPOSITS_QUERY, GOV_DEPOSITS_KEY],
]);

/** The key answering a governance query; undefined for a path that is not one. */
export function govQueryKey(path: string, data: Uint8Array): ModuleQueryAnswer | undefined {
  const single = NO_DATA.get(path);
  if (single !== undefined) {
    if (data.length !== 0) {
      throw new CaesarError(
        CaesarErrorCode.INVALID_QUERY,
        `caesar/${path} takes no data, got ${data.length} bytes`,
      );
    }
    return { key: single };
  }
  if (path !== GOV_PROPOSAL_QUERY && path !== GOV_VOTES_QUERY) return undefined;
  if (data.length !== 8) {
    throw new CaesarError(
      CaesarErrorCode.INVALID_QUERY,
      `caesar/${path} takes a proposal id as 8 big-endian bytes, got ${data.length} bytes`,
    );
  }
  const id = proposalIdFromBytes(data);
  return { key: path === GOV_PROPOSAL_QUERY ? proposalKey(id) : votesKey(id) };
}
