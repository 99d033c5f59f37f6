import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { GenesisDocument } from '../consensus/genesis.js';
import { HyperMeshError } from '../codec/error.js';
import { readKeyFile, writeKeyFile } from '../crypto/keyfile.js';
import {
  ZoneSigner,
  canonicalName,
  generateSigningKey,
  keyTag,
  signingKeyFromP256,
} from '../trustchain/dns/index.js';
import type { DnskeyData, DnssecSigningKey, ZoneBuildOptions } from '../trustchain/dns/index.js';
import { dnsZonesGenesisFromApp } from '../trustchain/dns-zones/index.js';
import type { DnsZonesGenesisJson } from '../trustchain/dns-zones/index.js';
import { CliError } from './cli-error.js';
import type { ValidatorNodeConfig } from './node-config.js';

/**
 * The keys a node's DNS service uses (docs/dns.md, "DNSSEC in the node" and "DoQ in the node"):
 *
 * - one P-256 zone-signing key per signed zone, made by the genesis ceremony: its DNSKEY goes in
 *   the zone's genesis entry (`app.dns.zones[i].dnskey`), so the DS record and the trust anchor
 *   follow from the genesis file alone, and its private half goes to every node as a key file
 *   (`dnssec-<zone>.key`, kind `p256`, mode 0600) named in the node configuration's
 *   `dns.dnssecKeys`. A node signs answers online with it and refuses to start with a key that
 *   is not the genesis one, or without a key for a zone the genesis publishes a DNSKEY for;
 * - for DNS-over-QUIC, the node's STOQ certificate (issued by the cluster CA) and its Ed25519 key.
 */

/** The key file name `cluster init` gives a zone's signing key: `dnssec-hypermesh.key`. */
export function zoneKeyFileName(apex: string): string {
  const name = canonicalName(apex).replace(/\.$/, '');
  return `dnssec-${name.replace(/[^a-z0-9.-]/g, '_')}.key`;
}

/** A fresh zone-signing key (P-256, DNSKEY flags 257: a combined signing key). */
export function generateZoneKey(): DnssecSigningKey {
  return generateSigningKey();
}

/** Writes a zone-signing key as a `p256` key file (0600; never replaces a file). */
export async function writeZoneKeyFile(file: string, key: DnssecSigningKey): Promise<void> {
  await writeKeyFile(file, {
    kind: 'p256',
    keys: { privateKey: key.privateKey, publicKey: createPublicKey(key.privateKey) },
  });
}

/** A DNSKEY in the genesis JSON form (`app.dns.zones[i].dnskey`). */
export function genesisDnskeyJson(
  dnskey: DnskeyData,
): NonNullable<DnsZonesGenesisJson['zones'][number]['dnskey']> {
  return {
    flags: dnskey.flags,
    protocol: dnskey.protocol,
    algorithm: dnskey.algorithm,
    publicKey: Buffer.from(dnskey.publicKey).toString('base64'),
  };
}

function sameKey(a: DnskeyData, b: DnskeyData): boolean {
  return (
    a.flags === b.flags &&
    a.protocol === b.protocol &&
    a.algorithm === b.algorithm &&
    Buffer.from(a.publicKey).equals(Buffer.from(b.publicKey))
  );
}

/** The DNSKEYs the genesis publishes, by canonical apex (none without an `app.dns` section). */
function genesisDnskeys(genesis: GenesisDocument): ReadonlyMap<string, DnskeyData> {
  return dnsZonesGenesisFromApp(genesis.app)?.dnskeys ?? new Map<string, DnskeyData>();
}

async function readZoneKey(file: string, zone: string): Promise<KeyObject> {
  try {
    return (await readKeyFile(file, { kind: 'p256' })).keys.privateKey;
  } catch (error) {
    const reason =
      error instanceof HyperMeshError
        ? `${error.message} [${error.code}]`
        : (error as Error).message;
    throw new CliError(`cannot read the DNSSEC key of ${zone} (dns.dnssecKeys): ${reason}`, 2);
  }
}

/**
 * The signers of the zones a node serves signed: one per `dns.dnssecKeys` entry, each checked
 * against the DNSKEY its zone's genesis entry publishes. Refuses (CliError, exit 2) a key for a
 * zone the genesis does not sign, a key that is not the genesis one, and a signed zone without a
 * key (its answers would carry no signatures, which validators holding the DS reject as bogus).
 */
export async function loadZoneSigners(
  config: ValidatorNodeConfig,
  genesis: GenesisDocument,
  clock?: () => number,
): Promise<Map<string, ZoneSigner>> {
  const signers = new Map<string, ZoneSigner>();
  if (config.dns === null) return signers;
  const published = genesisDnskeys(genesis);
  for (const [index, entry] of config.dns.dnssecKeys.entries()) {
    const where = `dns.dnssecKeys[${index}]`;
    let zone: string;
    try {
      zone = canonicalName(entry.zone);
    } catch (error) {
      throw new CliError(
        `${where}.zone ${JSON.stringify(entry.zone)}: ${(error as Error).message}`,
        2,
      );
    }
    const dnskey = published.get(zone);
    if (dnskey === undefined) {
      throw new CliError(
        `${where}: the genesis ${config.genesisFile} publishes no DNSKEY for ${zone} (signed zones: ${[...published.keys()].join(', ') || 'none'}); a key the genesis does not name cannot be trusted by anyone`,
        2,
      );
    }
    if (signers.has(zone)) throw new CliError(`${where}: a second key for ${zone}`, 2);
    const privateKey = await readZoneKey(entry.keyFile, zone);
    let key: DnssecSigningKey;
    try {
      key = signingKeyFromP256(privateKey, dnskey.flags);
    } catch (error) {
      throw new CliError(`${where}: ${entry.keyFile}: ${(error as Error).message}`, 2);
    }
    if (!sameKey(key.dnskey, dnskey)) {
      throw new CliError(
        `${where}: ${entry.keyFile} holds DNSKEY key tag ${key.keyTag}, but the genesis publishes key tag ${keyTag(dnskey)} for ${zone}: this is not the zone's key`,
        2,
      );
    }
    signers.set(
      zone,
      new ZoneSigner({ apex: zone, key, ...(clock === undefined ? {} : { clock }) }),
    );
  }
  const unsigned = [...published.keys()].filter((zone) => !signers.has(zone));
  if (unsigned.length > 0) {
    throw new CliError(
      `the genesis publishes a DNSKEY for ${unsigned.join(', ')}, but dns.dnssecKeys has no key file for it: the node would serve unsigned answers that validators reject`,
      2,
    );
  }
  return signers;
}

/** `ConsensusZones`' build options: each signed zone with its signer, every build. */
export function signingBuildOptions(
  signers: ReadonlyMap<string, ZoneSigner>,
): (apex: string) => ZoneBuildOptions {
  return (apex) => {
    const signer = signers.get(apex);
    return signer === undefined ? {} : { signer };
  };
}

/**
 * The DoQ server's TLS identity: the node's certificate chain (issued by the cluster CA, leaf
 * first) and the Ed25519 private key it certifies, in PEM.
 */
export async function doqIdentity(
  config: ValidatorNodeConfig,
  privateKey: KeyObject,
): Promise<{ cert: string; key: string }> {
  let cert: string;
  try {
    cert = await readFile(config.identity.certificateFile, 'utf8');
  } catch (error) {
    throw new CliError(
      `cannot read the node certificate ${config.identity.certificateFile} for DoQ: ${(error as Error).message}`,
      2,
    );
  }
  return { cert, key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}
