import type { AcmeUrls } from './routes.js';
import type { AccountRecord, AuthorizationRecord, ChallengeRecord, OrderRecord } from './store.js';

/** The JSON objects of RFC 8555 §7.1.2–§7.1.5 for stored records. */

const time = (ms: number): string => new Date(ms).toISOString();

export function accountObject(account: AccountRecord, urls: AcmeUrls) {
  return {
    status: account.status,
    contact: account.contact,
    ...(account.termsOfServiceAgreed ? { termsOfServiceAgreed: true } : {}),
    key: account.jwk,
    orders: urls.accountOrders(account.id),
  };
}

export function orderObject(
  order: OrderRecord,
  authorizationIds: readonly string[],
  urls: AcmeUrls,
) {
  return {
    status: order.status,
    expires: time(order.expiresMs),
    identifiers: order.identifiers,
    authorizations: authorizationIds.map((id) => urls.authorization(id)),
    finalize: urls.finalize(order.id),
    ...(order.certificateId === null ? {} : { certificate: urls.certificate(order.certificateId) }),
    ...(order.error === null ? {} : { error: order.error }),
    // RFC 9773 §5: an accepted `replaces` is reflected in every view of the order.
    ...(order.replaces === null ? {} : { replaces: order.replaces }),
  };
}

export function challengeObject(challenge: ChallengeRecord, urls: AcmeUrls) {
  return {
    type: challenge.type,
    url: urls.challenge(challenge.id),
    token: challenge.token,
    status: challenge.status,
    ...(challenge.validatedMs === null ? {} : { validated: time(challenge.validatedMs) }),
    ...(challenge.error === null ? {} : { error: challenge.error }),
  };
}

export function authorizationObject(
  authorization: AuthorizationRecord,
  challenges: readonly ChallengeRecord[],
  urls: AcmeUrls,
) {
  return {
    identifier: authorization.identifier,
    status: authorization.status,
    expires: time(authorization.expiresMs),
    challenges: challenges.map((challenge) => challengeObject(challenge, urls)),
    ...(authorization.wildcard ? { wildcard: true } : {}),
  };
}
