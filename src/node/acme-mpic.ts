import type { KeyObject } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import { bytesEqual, toHex } from '../crypto/bytes.js';
import { ed25519RawPublicKey } from '../crypto/ed25519.js';
import { sha256 } from '../crypto/hash.js';
import type { CaCorroborateRequest } from '../faces/ca-rpc.js';
import {
  AcmeProblem,
  checkCaa,
  validateChallenge,
  type CaaPolicy,
  type AcmeCorroborate,
  type AcmeCorroboration,
  type AcmeIdentifier,
  type ValidationOptions,
} from '../faces/acme/index.js';
import { beforeDeadline, startDeadline } from '../faces/acme/deadline.js';
import { checkOrderIdentifiers } from '../faces/acme/identifiers.js';
import { DEFAULT_MAX_VALIDATIONS } from '../faces/acme/service.js';
import { ValidationQueue } from '../faces/acme/validation-queue.js';
import { StoqError, StoqErrorCode, type PeerIdentity } from '../stoq/index.js';
import {
  decodeDcvAttestation,
  dcvIdentifier,
  signDcvAttestation,
  verifyDcvAttestation,
  type DcvElectorate,
} from '../trustchain/ca-module/dcv.js';
import { requesterFor, type CaIssuer, type CaModuleConfig } from '../trustchain/ca-module/index.js';

/**
 * Multi-perspective validation in the node (docs/acme.md, "Multi-perspective validation"):
 *
 * - the corroborator answers the CA RPC's `corroborate`: for an identifier the asking ACME
 *   account's grant could be issued for (`grantCorroborationAuthorizer`), it runs the ACME
 *   challenge validation with this node's own ACME validation options (ports, DNS resolvers)
 *   and, for a DNS name, the ACME server's CAA check (caa-check.ts) with this node's CAA
 *   identities and resolvers, and signs a DCV attestation (src/trustchain/ca-module/dcv.ts)
 *   with the node's Ed25519 identity key: `ok` is "the challenge is met and CAA permits
 *   issuance". One deadline of the validation timeout covers the whole of it: the wait for a
 *   slot, for the asker's height, the check and the CAA climb;
 * - the collector is what the node's ACME server calls after a challenge validated locally: it
 *   asks every current intermediate holder (itself locally, the others over STOQ) in parallel
 *   with a deadline and returns the attestations that verify and say ok, with the committed
 *   validator set's voting powers the server counts them against (the module's `dcvQuorum`).
 */

/**
 * Corroborations one caller may have running at once on a node: as many as its ACME server
 * runs validations at once (`DEFAULT_MAX_VALIDATIONS`), each of which asks every holder once,
 * so a server within its own cap is never refused. Its per-account cap keeps one ACME account
 * to a share of them.
 */
export const MAX_CORROBORATIONS_PER_PEER = DEFAULT_MAX_VALIDATIONS;
/**
 * Corroborations one caller may have waiting for a slot (the node's total is taken); more are
 * refused `RESOURCE_EXHAUSTED`. Waiting callers take free slots in turn (validation-queue.ts).
 */
export const MAX_QUEUED_CORROBORATIONS_PER_PEER = DEFAULT_MAX_VALIDATIONS;
/** Corroborations running at once on a node, over all callers. */
export const MAX_CORROBORATIONS = 2 * DEFAULT_MAX_VALIDATIONS;
/**
 * How long the collector waits for all holders (each holder's corroboration takes at most its
 * validation timeout, 10 s in a node), unless the server's own deadline ends sooner.
 */
export const DEFAULT_CORROBORATION_DEADLINE_MS = 15_000;

export type CorroborateResult = 'ok' | 'failed' | 'refused';

/**
 * Why `account` may not have `identifier` validated by this node, or null when it may. Checked
 * before any network request, so a peer cannot point the node's HTTP requests and DNS lookups
 * at names no certificate could be issued for.
 */
export type CorroborationAuthorizer = (
  account: Uint8Array,
  identifier: AcmeIdentifier,
) => string | null;

/**
 * The `ca` module's grants as a `CorroborationAuthorizer` (least privilege, docs/acme.md
 * "Multi-perspective validation"): `account` must have a grant with `requireDcv` — an ACME
 * server's account, the only kind whose requests carry DCV attestations — and `identifier` must
 * be a DNS name or IP address that grant allows. The grant is read with the module's
 * `requesterFor` and the identifier checked with `checkOrderIdentifiers`, the check the
 * account's own ACME server applies to orders (the CA core's name rules and zone and range
 * matching of src/trustchain/ca/names.ts, as `checkRequest` applies them). Grants are decided by
 * the genesis alone (config.ts `caGenesisFromApp`; no transaction changes them), so the module
 * configuration is the committed truth at every height.
 */
export function grantCorroborationAuthorizer(ca: CaModuleConfig): CorroborationAuthorizer {
  return (account, identifier) => {
    if (!ca.grants.has(toHex(account))) return 'the account has no grant in the genesis app.ca';
    const requester = requesterFor(ca, account);
    if (!requester.requireDcv) {
      return 'its grant does not have requireDcv (it is no ACME server\u2019s account)';
    }
    try {
      checkOrderIdentifiers([identifier], {
        dnsZones: requester.dnsZones,
        ipRanges: requester.ipRanges,
        wildcards: requester.wildcards,
        externalDns: requester.externalDns,
      });
    } catch (error) {
      if (error instanceof AcmeProblem) return `its grant does not allow it (${error.message})`;
      throw error;
    }
    return null;
  };
}

export interface CorroboratorOptions {
  readonly chainId: string;
  /** The node identity's Ed25519 key: the attestation's validator key and signer. */
  readonly identityKey: KeyObject;
  /** This node's ACME validation options (acme-node.ts builds them from the `acme` config). */
  readonly validation: ValidationOptions;
  /**
   * The node ACME server's CAA policy (resolvers and CAA identities): a DNS identifier whose
   * challenge is met is checked with it too, with the request's `wildcard`, `accountUri` and
   * method. Absent: no CAA check (as the server without one).
   */
  readonly caa?: CaaPolicy;
  /** Which accounts may have which identifiers validated (`grantCorroborationAuthorizer`). */
  readonly authorize: CorroborationAuthorizer;
  /** The node's latest committed height (the attestation's `height`). */
  readonly latestHeight: () => number;
  /** Whether this node currently holds an intermediate (only holders attest). */
  readonly isHolder: () => boolean;
  /**
   * Resolves once the node has committed `height` (true) or after `timeoutMs` (false); absent:
   * the request's height is not waited for.
   */
  readonly awaitHeight?: (height: number, timeoutMs: number) => Promise<boolean>;
  /**
   * Corroborations running for one caller, waiting for one caller, and running in all
   * (defaults `MAX_CORROBORATIONS_PER_PEER`, `MAX_QUEUED_CORROBORATIONS_PER_PEER`,
   * `MAX_CORROBORATIONS`).
   */
  readonly maxPerPeer?: number;
  readonly maxQueuedPerPeer?: number;
  readonly maxRunning?: number;
}

/** A corroboration request: the RPC's, checked by its schema (or built by the node itself). */
export type Corroborator = (
  request: CaCorroborateRequest,
  caller: Pick<PeerIdentity, 'role' | 'name' | 'uri'>,
  /** The call's signal: a caller that cancels or whose deadline passes frees its slot at once. */
  signal?: AbortSignal,
) => Promise<Uint8Array>;

export function createCorroborator(options: CorroboratorOptions): Corroborator {
  const validator = ed25519RawPublicKey(options.identityKey);
  const maxPerPeer = options.maxPerPeer ?? MAX_CORROBORATIONS_PER_PEER;
  const maxQueuedPerPeer = options.maxQueuedPerPeer ?? MAX_QUEUED_CORROBORATIONS_PER_PEER;
  // Callers (by STOQ identity URI) in place of accounts: each has its running and waiting caps,
  // and free slots go to the waiting callers in turn.
  const slots = new ValidationQueue({
    maxInFlight: options.maxRunning ?? MAX_CORROBORATIONS,
    maxInFlightPerAccount: maxPerPeer,
    maxQueuedPerAccount: maxQueuedPerPeer,
  });
  /** Starts each waiting corroboration, by ticket. */
  const starts = new Map<string, () => void>();
  let tickets = 0;
  const startWaiting = (): void => {
    for (const { challengeId } of slots.takeStartable()) starts.get(challengeId)?.();
  };
  const refuse = (code: StoqErrorCode, message: string): never => {
    throw new StoqError(code, message);
  };
  return async (request, caller, signal) => {
    if (caller.role === 'client') {
      refuse(StoqErrorCode.PERMISSION_DENIED, 'only validators and nodes may ask to corroborate');
    }
    if (!options.isHolder()) {
      refuse(StoqErrorCode.UNAVAILABLE, 'this node holds no intermediate: it does not attest');
    }
    if (!request.keyAuthorization.startsWith(`${request.token}.`)) {
      refuse(StoqErrorCode.INVALID_ARGUMENT, 'the key authorization does not start with the token');
    }
    // The name validated is the base name: a wildcard is the `wildcard` flag, never `*.` in the
    // value (RFC 8555 §7.1.3). Otherwise `*.x` would be validated literally (Host `*.x`, through
    // the victim's wildcard record) and attested as `dns:x`, a plain-name attestation.
    if (request.identifier.value.startsWith('*.')) {
      refuse(
        StoqErrorCode.INVALID_ARGUMENT,
        `identifier ${JSON.stringify(request.identifier.value)}: name the base name and set wildcard, not "*."`,
      );
    }
    // The attestation names the form validated: the wildcard authorization's (dns-01 only,
    // RFC 8555 §7.1.3; CAA checked for `issuewild`) or the name's own.
    const wildcard = request.wildcard ?? false;
    if (wildcard && (request.identifier.type !== 'dns' || request.method !== 'dns-01')) {
      refuse(
        StoqErrorCode.INVALID_ARGUMENT,
        `a wildcard authorization is validated by dns-01 for a DNS name, not ${request.method} for ${request.identifier.type}`,
      );
    }
    let identifier: string;
    try {
      identifier = dcvIdentifier(request.identifier.type, request.identifier.value);
    } catch (error) {
      return refuse(StoqErrorCode.INVALID_ARGUMENT, (error as Error).message);
    }
    const refusal = options.authorize(request.account, request.identifier);
    if (refusal !== null) {
      refuse(
        StoqErrorCode.PERMISSION_DENIED,
        `account ${toHex(request.account)} may not have ${request.identifier.type} identifier ${JSON.stringify(request.identifier.value)} validated: ${refusal}`,
      );
    }
    if (request.method === 'dns-01' && options.validation.txtResolver === undefined) {
      refuse(StoqErrorCode.UNAVAILABLE, 'this node has no DNS resolver for dns-01');
    }
    const deadline = startDeadline(options.validation.timeoutMs, signal);
    const ticket = String(++tickets);
    if (slots.enqueue(ticket, caller.uri) === 'full') {
      refuse(
        StoqErrorCode.RESOURCE_EXHAUSTED,
        `${maxPerPeer} corroborations of ${caller.name} are running and ${maxQueuedPerPeer} waiting already`,
      );
    }
    const started = new Promise<void>((resolve) => starts.set(ticket, resolve));
    startWaiting();
    try {
      await beforeDeadline(started, deadline);
    } catch {
      // Started in the same turn as the deadline passed: it holds a slot, which goes back.
      if (!slots.withdraw(ticket)) {
        slots.finish(ticket);
        startWaiting();
      }
      refuse(
        StoqErrorCode.RESOURCE_EXHAUSTED,
        `no corroboration slot for ${caller.name} within ${deadline.ms} ms`,
      );
    } finally {
      starts.delete(ticket);
    }
    let outcome;
    try {
      if (
        request.height !== undefined &&
        options.awaitHeight !== undefined &&
        request.height > options.latestHeight()
      ) {
        await options.awaitHeight(request.height, Math.max(1, deadline.remainingMs()));
      }
      outcome = await validateChallenge(
        request.method,
        request.identifier,
        request.token,
        request.keyAuthorization,
        options.validation,
        deadline,
      );
      // The same CAA check as the ACME server's (RFC 8659 §3, RFC 8657): `ok` also means CAA
      // permits issuance from this perspective.
      if (outcome === null && options.caa !== undefined) {
        outcome = await checkCaa(
          options.caa,
          {
            identifier: request.identifier,
            wildcard,
            accountUri: request.accountUri ?? '',
            validationMethod: request.method,
          },
          deadline,
        );
      }
    } finally {
      slots.finish(ticket);
      startWaiting();
    }
    const ok = outcome === null;
    return signDcvAttestation(
      {
        chainId: options.chainId,
        account: request.account,
        identifier,
        wildcard,
        method: request.method,
        keyAuthorizationHash: sha256(new TextEncoder().encode(request.keyAuthorization)),
        height: options.latestHeight(),
        ok,
        validator,
      },
      options.identityKey,
    );
  };
}

/** The `hypermesh_ca_corroborate_total{result}` counter of the RPC. */
export function createCorroborateCounter(registry: Registry): (result: CorroborateResult) => void {
  const counter = new Counter({
    name: 'hypermesh_ca_corroborate_total',
    help: 'CA RPC corroborate calls by result (ok, failed: the challenge is not met, refused)',
    labelNames: ['result'],
    registers: [registry],
  });
  return (result) => counter.inc({ result });
}

export interface CollectorOptions {
  readonly chainId: string;
  /** The ACME account (Ed25519 public key) the node's requests come from. */
  readonly account: Uint8Array;
  /** The current intermediate holders (genesis and added). */
  readonly holders: () => readonly CaIssuer[];
  /**
   * The committed validator set with its voting powers (`readDcvElectorate` over the node's
   * committed `ca` state): what the holders' attestations are counted against, as in the module.
   */
  readonly electorate: () => DcvElectorate;
  /** This node's identity key (a holder with this account is asked locally). */
  readonly self: Uint8Array;
  /** This node's committed height (sent along: a peer behind it waits for it). */
  readonly latestHeight: () => number;
  /** This node's own corroborator. */
  readonly local: (request: CaCorroborateRequest) => Promise<Uint8Array>;
  /** Asks holder `peer` (its node name) over STOQ. */
  readonly remote: (
    peer: string,
    request: CaCorroborateRequest,
    deadlineMs: number,
  ) => Promise<Uint8Array>;
  readonly deadlineMs?: number;
  /** A holder that did not answer with a usable attestation (logged by the node). */
  readonly onFailure?: (holder: string, reason: string) => void;
}

/** Why an attestation from `holder` does not count, or null when it does. */
function attestationProblem(
  bytes: Uint8Array,
  holder: CaIssuer,
  expected: {
    chainId: string;
    account: Uint8Array;
    identifier: string;
    wildcard: boolean;
    method: string;
    kah: Uint8Array;
  },
): string | null {
  const attestation = decodeDcvAttestation(bytes);
  const body = attestation.body;
  if (!verifyDcvAttestation(attestation)) return 'the signature does not verify';
  if (!bytesEqual(body.validator, holder.account)) return 'signed by another validator';
  if (body.chainId !== expected.chainId) return `for chain ${body.chainId}`;
  if (!bytesEqual(body.account, expected.account)) return 'for another account';
  if (body.identifier !== expected.identifier) return `for ${body.identifier}`;
  if (body.wildcard !== expected.wildcard) {
    return body.wildcard ? 'for the wildcard of the name' : 'for the name, not its wildcard';
  }
  if (body.method !== expected.method) return `for method ${body.method}`;
  if (!bytesEqual(body.keyAuthorizationHash, expected.kah)) return 'for another key authorization';
  if (!body.ok) return 'the challenge is not met (or CAA forbids issuance) from its perspective';
  return null;
}

export function createCorroborationCollector(options: CollectorOptions): AcmeCorroborate {
  const deadlineMs = options.deadlineMs ?? DEFAULT_CORROBORATION_DEADLINE_MS;
  return async (
    identifier,
    method,
    token,
    keyAuthorization,
    context,
  ): Promise<AcmeCorroboration> => {
    const holders = options.holders();
    const electorate = options.electorate();
    const request: CaCorroborateRequest = {
      account: options.account,
      identifier: { type: identifier.type, value: identifier.value },
      method,
      token,
      keyAuthorization,
      height: options.latestHeight(),
      ...(context === undefined
        ? {}
        : { wildcard: context.wildcard, accountUri: context.accountUri }),
    };
    const expected = {
      chainId: options.chainId,
      account: options.account,
      identifier: dcvIdentifier(identifier.type, identifier.value),
      wildcard: context?.wildcard ?? false,
      method,
      kah: sha256(new TextEncoder().encode(keyAuthorization)),
    };
    // No longer than the server still waits (what is left of its validation's deadline).
    const waitMs = Math.max(1, Math.floor(Math.min(deadlineMs, context?.deadlineMs ?? deadlineMs)));
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), waitMs);
      timer.unref();
    });
    const ask = async (
      holder: CaIssuer,
    ): Promise<{ validator: Uint8Array; bytes: Uint8Array } | null> => {
      try {
        const asked = bytesEqual(holder.account, options.self)
          ? options.local(request)
          : options.remote(holder.name, request, waitMs);
        const bytes = await Promise.race([asked, expired]);
        if (bytes === 'expired') {
          options.onFailure?.(holder.name, `no answer within ${waitMs} ms`);
          return null;
        }
        const problem = attestationProblem(bytes, holder, expected);
        if (problem !== null) {
          options.onFailure?.(holder.name, problem);
          return null;
        }
        return { validator: holder.account, bytes };
      } catch (error) {
        options.onFailure?.(holder.name, (error as Error).message);
        return null;
      }
    };
    try {
      const answers = await Promise.all(holders.map(ask));
      const distinct = new Map<string, { validator: Uint8Array; bytes: Uint8Array }>();
      for (const answer of answers) {
        if (answer !== null) distinct.set(toHex(answer.validator), answer);
      }
      return { holders: holders.length, electorate, attestations: [...distinct.values()] };
    } finally {
      clearTimeout(timer);
    }
  };
}
