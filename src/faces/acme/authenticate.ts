import { parseJwk, parseJws, verifyJwsSignature, type AccountKey, type ParsedJws } from './jws.js';
import type { NonceStore } from './nonces.js';
import { ProblemType, malformed, problem, type AcmeProblem } from './problems.js';
import type { AcmeUrls } from './routes.js';
import type { AccountRecord, AcmeStore } from './store.js';

/**
 * Request authentication (RFC 8555 §6.2–§6.5). `jwk` requests (newAccount, revokeCert with the
 * certificate key) carry their public key; all others name their account by `kid`. Order of
 * checks: JWS shape and algorithm → `url` → nonce present → key → signature → nonce live →
 * account active (401 otherwise, §7.3.6). The nonce is spent only after the signature
 * verifies, so nobody but the key holder can burn it.
 */

export type KeyMode = 'jwk' | 'kid' | 'either';

export interface Authenticated {
  readonly jws: ParsedJws;
  readonly key: AccountKey;
  /** The account for a `kid` request; `undefined` for `jwk`. */
  readonly account: AccountRecord | undefined;
}

export interface AuthenticationContext {
  readonly store: AcmeStore;
  readonly urls: AcmeUrls;
  readonly nonces: NonceStore;
}

export function authenticate(
  context: AuthenticationContext,
  body: string,
  url: string,
  mode: KeyMode,
): Authenticated {
  const jws = parseJws(body);
  const { header } = jws;
  // §6.4: the url header must be exactly the URL the request was sent to.
  if (header.url !== url) {
    throw problem(
      ProblemType.unauthorized,
      `the JWS url ${JSON.stringify(header.url)} is not this request's URL`,
    );
  }
  if (header.nonce === undefined) throw problem(ProblemType.badNonce, 'the JWS has no nonce');
  let key: AccountKey;
  let account: AccountRecord | undefined;
  if (header.jwk !== undefined) {
    if (mode === 'kid') throw malformed('this request must be signed with the account key (kid)');
    key = parseJwk(header.jwk);
  } else {
    if (mode === 'jwk') throw malformed('this request must carry the public key (jwk), not kid');
    const id = context.urls.accountIdOfKid(header.kid as string);
    account = id === undefined ? undefined : context.store.accountById(id);
    if (account === undefined) {
      throw problem(ProblemType.accountDoesNotExist, `no account ${JSON.stringify(header.kid)}`);
    }
    key = parseJwk(account.jwk);
  }
  verifyJwsSignature(jws, key);
  if (!context.nonces.consume(header.nonce)) {
    throw problem(ProblemType.badNonce, 'the JWS nonce is unknown, used or expired');
  }
  if (account !== undefined && account.status !== 'valid') throw accountRefused(account.status);
  return { jws, key, account };
}

/**
 * RFC 8555 §7.3.6: a POST or POST-as-GET from a deactivated (or revoked) account is answered
 * 401 `unauthorized` — newAccount with its key included.
 */
export function accountRefused(status: string): AcmeProblem {
  return problem(ProblemType.unauthorized, `account is ${status}`, { status: 401 });
}
