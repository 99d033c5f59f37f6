import { z } from 'zod';
import { CaError } from '../../trustchain/ca/errors.js';
import { checkDnsName } from '../../trustchain/ca/names.js';
import { ProblemType, problem } from './problems.js';

/**
 * Schemas of the JWS payloads (RFC 8555 §7.3–§7.6, and `replaces` of RFC 9773 §5). Objects are strict: a member this server
 * does not know is `malformed`, never silently ignored — except `externalAccountBinding`,
 * which is accepted and ignored because this server does not require one (§7.3.4).
 */

export const MAX_CONTACTS = 10;
export const MAX_CONTACT_LENGTH = 320;

const contactList = z.array(z.string().max(MAX_CONTACT_LENGTH)).max(MAX_CONTACTS);

export const newAccountPayload = z.strictObject({
  contact: contactList.optional(),
  termsOfServiceAgreed: z.boolean().optional(),
  onlyReturnExisting: z.boolean().optional(),
  externalAccountBinding: z.record(z.string(), z.unknown()).optional(),
});

export const accountUpdatePayload = z.strictObject({
  contact: contactList.optional(),
  status: z.literal('deactivated').optional(),
  termsOfServiceAgreed: z.boolean().optional(),
});

export const newOrderPayload = z.strictObject({
  identifiers: z
    .array(z.strictObject({ type: z.string().max(64), value: z.string().max(1_024) }))
    .max(1_000),
  notBefore: z.string().max(64).optional(),
  notAfter: z.string().max(64).optional(),
  /** RFC 9773 §5: the certID of the certificate this order replaces (parsed in service.ts). */
  replaces: z.string().max(1_024).optional(),
});

export const authorizationUpdatePayload = z.strictObject({ status: z.literal('deactivated') });

export const challengeResponsePayload = z.strictObject({});

export const finalizePayload = z.strictObject({ csr: z.string().min(1).max(65_536) });

export const keyChangeInnerPayload = z.strictObject({
  account: z.string().min(1).max(2_048),
  oldKey: z.record(z.string(), z.unknown()),
});

export const revokePayload = z.strictObject({
  certificate: z.string().min(1).max(131_072),
  reason: z.int().min(0).max(10).optional(),
});

/**
 * RFC 5280 §5.3.1 reasons a subscriber may give (as Let's Encrypt): unspecified (0),
 * keyCompromise (1), affiliationChanged (3), superseded (4), cessationOfOperation (5).
 * caCompromise, certificateHold, removeFromCRL, privilegeWithdrawn and aACompromise are not
 * the subscriber's to claim.
 */
export const ALLOWED_REVOCATION_REASONS: ReadonlySet<number> = new Set([0, 1, 3, 4, 5]);

const MAILBOX_LOCAL = /^[A-Za-z0-9.!#$%&'*+/=^_`{|}~-]{1,64}$/;

/**
 * RFC 8555 §7.3: contacts are `mailto:` URLs with one address and no header fields
 * (`unsupportedContact` for any other scheme, `invalidContact` for a malformed address).
 */
export function checkContacts(contacts: readonly string[]): void {
  for (const contact of contacts) {
    if (!contact.startsWith('mailto:')) {
      throw problem(
        ProblemType.unsupportedContact,
        `only mailto: contacts are supported, got ${JSON.stringify(contact.slice(0, 40))}`,
      );
    }
    const address = contact.slice('mailto:'.length);
    const at = address.lastIndexOf('@');
    const local = address.slice(0, at);
    const domain = address.slice(at + 1);
    let domainOk = at > 0;
    try {
      if (domainOk) checkDnsName(domain.toLowerCase());
    } catch (error) {
      if (!(error instanceof CaError)) throw error;
      domainOk = false;
    }
    if (!domainOk || !MAILBOX_LOCAL.test(local) || domain.includes('*')) {
      throw problem(
        ProblemType.invalidContact,
        `${JSON.stringify(contact)} is not a mailto: URL with one address`,
      );
    }
  }
}
