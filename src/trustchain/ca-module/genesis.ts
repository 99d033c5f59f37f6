import { INITIAL_HEIGHT, type InitialStateEntry } from '../../consensus/application/index.js';
import { bytesEqual, fromBase64, toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { KeyUsage, parseCertificate, type ParsedCertificate } from '../../crypto/x509.js';
import {
  ECDSA_WITH_SHA256,
  readTbs,
  splitCertificate,
  verifyEcdsaSha256,
  type CertificateParts,
  type TbsFields,
} from '../ca/certificate.js';
import { BATCH_INCLUSION_OID, ISSUANCE_REFERENCE_OID } from '../ca/extensions.js';
import type { Issuer } from '../ca/issue.js';
import {
  caStateKey,
  certificateKey,
  encodeCertificateRecord,
  encodeGenesisCertificateRecord,
  encodePublished,
  genesisCertificateKey,
  publishedKey,
} from './state.js';
import { EMPTY_TREE_HEAD, TREE_HEAD_KEY, appendCertificates, encodeTreeHead } from './tree-head.js';

/**
 * Genesis bootstrap certificates (docs/ca.md, "Genesis"): the certificates `cluster init` issues
 * from the validators' genesis intermediates before consensus runs (every validator's STOQ
 * identity, each node's ACME HTTPS certificate, the operator's client certificate). The genesis
 * `app.ca.genesisCertificates` lists them in issuance order; the block at height 1 writes them
 * into the module's state as certificates published at height 1 (`caInitialState`), so the CT
 * log holds them and they can be revoked like any published certificate.
 *
 * They have no issuance transaction. Their certificate record's `txHash` field holds
 * `genesisCertificateTxHash(der)` = SHA-256(DER): no transaction has that hash, and no
 * `ca/sn/<serial>` or `ca/req/<txHash>` record points at it, so serial and request lookups
 * answer "unknown" for them. `ca/gen/<serial>` marks a genesis certificate and names the account
 * that may revoke it.
 */

/** Height at which the genesis certificates are published (the router's initial state). */
export const GENESIS_CERTIFICATE_HEIGHT = INITIAL_HEIGHT;
export const MAX_GENESIS_CERTIFICATES = 4096;
export const MAX_GENESIS_CERTIFICATE_BYTES = 16 * 1024;

/** One `app.ca.genesisCertificates` entry, checked (`checkGenesisCertificates`). */
export interface GenesisCertificate {
  /** Name of the genesis intermediate's holder that issued it. */
  readonly issuer: string;
  /** The account that may revoke it (`cluster init`: the operator's key). */
  readonly account: Uint8Array;
  readonly der: Uint8Array;
  /** 16 bytes, as every TrustChain serial. */
  readonly serial: Uint8Array;
}

/** The stand-in for the issuance txHash in a genesis certificate's record: SHA-256 of its DER. */
export function genesisCertificateTxHash(der: Uint8Array): Uint8Array {
  return sha256(der);
}

/** Whether the certificate record (DER, txHash, height) is a genesis certificate's. */
export function isGenesisCertificateRecord(record: {
  readonly der: Uint8Array;
  readonly txHash: Uint8Array;
  readonly publishedAt: number;
}): boolean {
  return (
    record.publishedAt === GENESIS_CERTIFICATE_HEIGHT &&
    bytesEqual(record.txHash, genesisCertificateTxHash(record.der))
  );
}

/** Whether a certificate carries neither TrustChain issuance extension (so no batch proof). */
export function lacksIssuanceExtensions(certificate: Uint8Array): boolean {
  const { extensions } = readTbs(splitCertificate(certificate).tbs);
  return !extensions.some(
    (extension) =>
      extension.oid === ISSUANCE_REFERENCE_OID || extension.oid === BATCH_INCLUSION_OID,
  );
}

/**
 * Checks the entries against the genesis intermediates (`issuers`, by name) and the cluster:
 * canonical base64 DER of at most `MAX_GENESIS_CERTIFICATE_BYTES` that parses; the issuer is a
 * genesis intermediate whose subject is the certificate's issuer name and whose key verifies its
 * ECDSA P-256 SHA-256 signature (src/trustchain/ca/certificate.ts); a 16-byte serial no other
 * entry has; not a CA certificate (no basicConstraints cA, no keyCertSign); its URIs in the
 * cluster's SPIFFE trust domain. Throws what `invalid` throws, with the entry's index.
 */
export function checkGenesisCertificates(
  entries: readonly {
    readonly issuer: string;
    readonly account: string;
    readonly certificate: string;
  }[],
  issuers: readonly { readonly name: string; readonly issuer: Issuer }[],
  cluster: string,
  invalid: (message: string, cause?: unknown) => never,
): GenesisCertificate[] {
  const serials = new Map<string, number>();
  return entries.map((entry, index): GenesisCertificate => {
    const where = `genesisCertificates[${index}]`;
    let der: Uint8Array;
    try {
      der = fromBase64(entry.certificate);
    } catch (error) {
      return invalid(`${where}.certificate is not canonical padded base64`, error);
    }
    if (der.length > MAX_GENESIS_CERTIFICATE_BYTES) {
      invalid(
        `${where}.certificate is ${der.length} bytes, more than ${MAX_GENESIS_CERTIFICATE_BYTES}`,
      );
    }
    let parts: CertificateParts;
    let tbs: TbsFields;
    let parsed: ParsedCertificate;
    try {
      parts = splitCertificate(der);
      tbs = readTbs(parts.tbs);
      parsed = parseCertificate(der);
    } catch (error) {
      return invalid(
        `${where}.certificate is not a DER X.509 v3 certificate: ${(error as Error).message}`,
        error,
      );
    }
    const holder = issuers.find((candidate) => candidate.name === entry.issuer);
    if (holder === undefined) {
      invalid(`${where}.issuer "${entry.issuer}" has no genesis intermediate in the trust bundle`);
    }
    if (
      !bytesEqual(parts.signatureAlgorithm, ECDSA_WITH_SHA256) ||
      !bytesEqual(tbs.issuerName, holder.issuer.subjectName) ||
      !verifyEcdsaSha256(parts.tbs, parts.signature, holder.issuer.publicKey)
    ) {
      invalid(`${where}: the certificate is not signed by ${entry.issuer}'s intermediate`);
    }
    if (
      parsed.basicConstraints?.ca === true ||
      (parsed.keyUsage !== null && (parsed.keyUsage & KeyUsage.keyCertSign) !== 0)
    ) {
      invalid(`${where}: a CA certificate cannot be a genesis bootstrap certificate`);
    }
    const outside = parsed.uris.find((uri) => !uri.startsWith(`spiffe://${cluster}/`));
    if (outside !== undefined) {
      invalid(`${where}: URI ${outside} is outside the cluster's trust domain`);
    }
    if (tbs.serial.length !== 16) {
      invalid(`${where}: the serial number is ${tbs.serial.length} bytes, not 16`);
    }
    const hex = toHex(tbs.serial);
    const earlier = serials.get(hex);
    if (earlier !== undefined) {
      invalid(`${where}: serial ${hex} is also the serial of genesisCertificates[${earlier}]`);
    }
    serials.set(hex, index);
    return {
      issuer: entry.issuer,
      account: Uint8Array.from(Buffer.from(entry.account, 'hex')),
      der,
      serial: tbs.serial.slice(),
    };
  });
}

/**
 * The router's `initialState` for the `ca` module (full keys, written by the block at height 1
 * before its transactions): for each genesis certificate its certificate record (txHash
 * `genesisCertificateTxHash`, published at height 1) and its `ca/gen/<serial>` owner record;
 * `ca/pub/1` with the serials in genesis order and time `genesisTime`; and the consensus tree
 * head over their RFC 6962 `x509_entry` leaves with timestamp `genesisTime`, at height 1 — the
 * entries ca-node.ts appends to the local log for height 1. Empty without genesis certificates.
 */
export function caInitialState(
  config: { readonly genesisCertificates: readonly GenesisCertificate[] },
  genesisTime: number,
): InitialStateEntry[] {
  const certificates = config.genesisCertificates;
  if (certificates.length === 0) return [];
  const entries: InitialStateEntry[] = [];
  for (const certificate of certificates) {
    entries.push(
      {
        key: caStateKey(certificateKey(certificate.serial)),
        value: encodeCertificateRecord({
          der: certificate.der,
          txHash: genesisCertificateTxHash(certificate.der),
          issuer: certificate.issuer,
          publishedAt: GENESIS_CERTIFICATE_HEIGHT,
        }),
      },
      {
        key: caStateKey(genesisCertificateKey(certificate.serial)),
        value: encodeGenesisCertificateRecord({ account: certificate.account }),
      },
    );
  }
  entries.push(
    {
      key: caStateKey(publishedKey(GENESIS_CERTIFICATE_HEIGHT)),
      value: encodePublished({
        time: genesisTime,
        serials: certificates.map((certificate) => certificate.serial),
      }),
    },
    {
      key: caStateKey(TREE_HEAD_KEY),
      value: encodeTreeHead(
        appendCertificates(
          EMPTY_TREE_HEAD,
          certificates.map((certificate) => certificate.der),
          GENESIS_CERTIFICATE_HEIGHT,
          genesisTime,
        ),
      ),
    },
  );
  return entries;
}
