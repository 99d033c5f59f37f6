/**
 * The server's URLs (RFC 8555 §7.1). Clients learn them from the directory and from `Location`
 * and object fields; the paths below are this server's choice. Resource IDs are 128 random
 * bits in base64url.
 */

export type Route =
  | { readonly kind: 'directory' }
  | { readonly kind: 'newNonce' }
  | { readonly kind: 'newAccount' }
  | { readonly kind: 'newOrder' }
  | { readonly kind: 'revokeCert' }
  | { readonly kind: 'keyChange' }
  | { readonly kind: 'account'; readonly id: string }
  /** `cursor`: RFC 8555 §7.1.2.1 paging, from the previous page's `Link: rel="next"`. */
  | { readonly kind: 'accountOrders'; readonly id: string; readonly cursor?: string }
  | { readonly kind: 'order'; readonly id: string }
  | { readonly kind: 'finalize'; readonly id: string }
  | { readonly kind: 'authorization'; readonly id: string }
  | { readonly kind: 'challenge'; readonly id: string }
  | { readonly kind: 'certificate'; readonly id: string }
  /** RFC 9773 §4.2; `certId` is the raw path segment, parsed by renewal-info.ts. */
  | { readonly kind: 'renewalInfo'; readonly certId: string };

export type RouteKind = Route['kind'];

// A Map, not an object literal: a target such as `/__proto__` must find nothing.
const FIXED: ReadonlyMap<string, RouteKind> = new Map<string, RouteKind>([
  ['/directory', 'directory'],
  ['/acme/new-nonce', 'newNonce'],
  ['/acme/new-account', 'newAccount'],
  ['/acme/new-order', 'newOrder'],
  ['/acme/revoke-cert', 'revokeCert'],
  ['/acme/key-change', 'keyChange'],
]);

// Any segment (even empty or not base64url), so that a bad certID is a 400 `malformed`, not a 404.
const RENEWAL_INFO = /^\/acme\/renewal-info\/([^/?#]*)$/;

// The one query string this server answers: the orders list's page cursor (an order ID).
const ORDERS_PAGE = /^\/acme\/acct\/([A-Za-z0-9_-]{1,64})\/orders\?cursor=([A-Za-z0-9_-]{1,64})$/;

const WITH_ID =
  /^\/acme\/(acct|order|authz|chall|cert)\/([A-Za-z0-9_-]{1,64})(\/orders|\/finalize)?$/;

export class AcmeUrls {
  constructor(readonly base: string) {}

  get directory(): string {
    return `${this.base}/directory`;
  }
  get newNonce(): string {
    return `${this.base}/acme/new-nonce`;
  }
  get newAccount(): string {
    return `${this.base}/acme/new-account`;
  }
  get newOrder(): string {
    return `${this.base}/acme/new-order`;
  }
  get revokeCert(): string {
    return `${this.base}/acme/revoke-cert`;
  }
  get keyChange(): string {
    return `${this.base}/acme/key-change`;
  }
  /** RFC 9773 §4: the directory's `renewalInfo`; a certificate's resource is `<this>/<certID>`. */
  get renewalInfo(): string {
    return `${this.base}/acme/renewal-info`;
  }
  account(id: string): string {
    return `${this.base}/acme/acct/${id}`;
  }
  accountOrders(id: string, cursor?: string): string {
    const list = `${this.base}/acme/acct/${id}/orders`;
    return cursor === undefined ? list : `${list}?cursor=${cursor}`;
  }
  order(id: string): string {
    return `${this.base}/acme/order/${id}`;
  }
  finalize(id: string): string {
    return `${this.base}/acme/order/${id}/finalize`;
  }
  authorization(id: string): string {
    return `${this.base}/acme/authz/${id}`;
  }
  challenge(id: string): string {
    return `${this.base}/acme/chall/${id}`;
  }
  certificate(id: string): string {
    return `${this.base}/acme/cert/${id}`;
  }

  /** The account ID a `kid` names, or `undefined` when it is not one of this server's account URLs. */
  accountIdOfKid(kid: string): string | undefined {
    const prefix = `${this.base}/acme/acct/`;
    if (!kid.startsWith(prefix)) return undefined;
    const id = kid.slice(prefix.length);
    return /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : undefined;
  }
}

/**
 * The route of a request target, or `undefined` for anything else (query strings included,
 * but for the orders list's `cursor`).
 */
export function routeOf(target: string): Route | undefined {
  const fixed = FIXED.get(target);
  if (fixed !== undefined) return { kind: fixed } as Route;
  const page = ORDERS_PAGE.exec(target);
  if (page !== null) return { kind: 'accountOrders', id: page[1] ?? '', cursor: page[2] ?? '' };
  const renewal = RENEWAL_INFO.exec(target);
  if (renewal !== null) return { kind: 'renewalInfo', certId: renewal[1] ?? '' };
  const match = WITH_ID.exec(target);
  if (match === null) return undefined;
  const [, segment, id = '', suffix] = match;
  if (segment === 'acct')
    return suffix === '/orders'
      ? { kind: 'accountOrders', id }
      : suffix === undefined
        ? { kind: 'account', id }
        : undefined;
  if (segment === 'order')
    return suffix === '/finalize'
      ? { kind: 'finalize', id }
      : suffix === undefined
        ? { kind: 'order', id }
        : undefined;
  if (suffix !== undefined) return undefined;
  if (segment === 'authz') return { kind: 'authorization', id };
  if (segment === 'chall') return { kind: 'challenge', id };
  return { kind: 'certificate', id };
}
