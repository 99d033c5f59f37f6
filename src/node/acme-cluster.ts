import { isIP } from 'node:net';
import path from 'node:path';
import type { GenesisAppValue } from '../consensus/genesis.js';
import { toHex } from '../crypto/bytes.js';
import { isWithinZone } from '../trustchain/ca/names.js';
import type { NodeIdentityKeys } from '../crypto/keyfile.js';
import { derToPem } from '../crypto/x509.js';
import { writeFile } from 'node:fs/promises';
import { issueGenesisCertificate, type GenesisIssuer } from './ca-genesis.js';
import { createWalletKey } from './wallet.js';

/**
 * The ACME part of `hypermesh cluster init` (docs/acme.md, "In the node"). Every node gets its
 * own ACME account key, `node-K/acme-account.key` (Ed25519, 0600), with a genesis `app.ca`
 * grant of its own: profile `service`, the cluster zone (wildcards included) and the listen
 * address. The operator key stays off the nodes, and the node identity key (a validator key
 * with the `node` profile and its own sequence of publications) does not sign ACME requests.
 * The HTTPS certificate, `node-K/acme-https.pem` (leaf, then the intermediate), is issued at
 * genesis by the node's own TrustChain intermediate (`ca/trustchain-root.pem` is the root clients
 * must trust) for the node identity key, naming the listen address as a DNS name or IP address.
 * Like the STOQ certificate issued beside it, it is a bootstrap certificate: not issued through
 * consensus, but listed in the genesis (`app.ca.genesisCertificates`), so it is published at
 * height 1, in the CT log and revocable.
 */
export const ACME_FILES = {
  accountKey: 'acme-account.key',
  certificate: 'acme-https.pem',
} as const;

export interface NodeAcmeFiles {
  /** The node's ACME account (raw Ed25519 public key). */
  readonly accountPublicKey: Uint8Array;
  /** The node configuration's `acme` section (paths relative to node-K/). */
  readonly config: {
    readonly https: { readonly host: string; readonly port: number };
    readonly accountKeyFile: string;
    readonly certificateFile: string;
  };
}

/** Writes `acme-account.key` and `acme-https.pem` into `nodeDir`. */
export async function writeNodeAcmeFiles(options: {
  /** The node's intermediate (`ClusterCaResult.issuers`). */
  readonly ca: GenesisIssuer;
  readonly chainId: string;
  readonly name: string;
  readonly nodeDir: string;
  readonly keys: NodeIdentityKeys;
  readonly host: string;
  readonly port: number;
  readonly validityDays: number;
  readonly now: Date;
}): Promise<NodeAcmeFiles> {
  const account = await createWalletKey(path.join(options.nodeDir, ACME_FILES.accountKey));
  const host = options.host.toLowerCase();
  const chain = issueGenesisCertificate({
    issuer: options.ca,
    chainId: options.chainId,
    role: 'validator',
    name: options.name,
    keys: options.keys,
    validityDays: options.validityDays,
    now: options.now,
    ...(isIP(host) === 0 ? { dnsNames: [host] } : { ipAddresses: [host] }),
  });
  await writeFile(
    path.join(options.nodeDir, ACME_FILES.certificate),
    chain.map((der) => derToPem(der)).join(''),
    { flag: 'wx', mode: 0o644 },
  );
  return {
    accountPublicKey: account.publicKey,
    config: {
      https: { host: options.host, port: options.port },
      accountKeyFile: ACME_FILES.accountKey,
      certificateFile: ACME_FILES.certificate,
    },
  };
}

/**
 * The genesis `app.ca` section with one grant per node ACME account added: profile `service`,
 * the cluster zone (`dnsZone`, without its trailing dot; wildcards allowed), `host` when it
 * is an IP address, and `requireDcv` (issuance needs multi-perspective attestations); with
 * `externalDns` (`--acme-external-dns`) also DNS names outside the zone.
 */
export function withAcmeGrants(
  section: GenesisAppValue,
  accounts: readonly Uint8Array[],
  dnsZone: string | null,
  host: string,
  externalDns = false,
): GenesisAppValue {
  const current = section as { readonly grants?: readonly GenesisAppValue[] };
  const zone = dnsZone?.replace(/\.$/, '') ?? null;
  const family = isIP(host);
  const ipRanges = family === 4 ? [`${host}/32`] : family === 6 ? [`${host}/128`] : [];
  const grants: GenesisAppValue[] = accounts.map((account) => ({
    account: toHex(account),
    profiles: ['service'],
    dnsZones: zone === null ? [] : [zone],
    wildcards: zone !== null,
    ipRanges,
    uriPrefixes: [],
    // Multi-perspective validation: no DNS name or IP address without a quorum of validator
    // attestations (docs/acme.md, "Multi-perspective validation").
    requireDcv: true,
    ...(externalDns ? { externalDns: true } : {}),
  }));
  return {
    ...(section as { readonly [key: string]: GenesisAppValue }),
    grants: [...(current.grants ?? []), ...grants],
  };
}

/**
 * The genesis `app.ca` section with the nodes' ACME listen host (a DNS name; an IP address is in
 * the grant's `ipRanges` already) added to the `dnsZones` of `account`'s grant, unless a zone of
 * that grant covers it. `account` is the one `app.ca.genesisCertificates` names for every
 * bootstrap certificate (the operator's): once an `acme-https.pem` has been renewed from its
 * genesis entry, its next renewals re-issue the request under that account's grant (docs/ca.md,
 * "Renewing a genesis certificate"), which must then allow its DNS name. Only that one name (and
 * the names below it, as any zone) is added, to that one grant.
 */
export function withAcmeHostGranted(
  section: GenesisAppValue,
  account: Uint8Array,
  host: string,
): GenesisAppValue {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (isIP(name) !== 0) return section;
  const current = section as { readonly grants?: readonly GenesisAppValue[] };
  const hex = toHex(account);
  const grants = (current.grants ?? []).map((grant) => {
    const entry = grant as { readonly account?: string; readonly dnsZones?: readonly string[] };
    if (entry.account !== hex) return grant;
    const zones = entry.dnsZones ?? [];
    if (zones.some((zone) => isWithinZone(name, zone))) return grant;
    return {
      ...(grant as { readonly [key: string]: GenesisAppValue }),
      dnsZones: [...zones, name],
    };
  });
  return { ...(section as { readonly [key: string]: GenesisAppValue }), grants };
}
