import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { encodeCanonical } from '../../codec/cbor.js';
import { bytesEqual, fromBase64, fromHex, toBase64, toHex } from '../../crypto/bytes.js';
import {
  FALCON1024_MAX_SIGNATURE_BYTES,
  FALCON1024_PUBLIC_KEY_BYTES,
  FALCON1024_PUBLIC_KEY_HEADER,
  FALCON_ALGORITHM_ID,
  defaultFalcon,
  type FalconBackend,
} from '../../crypto/falcon.js';
import {
  KeyUsage,
  certificateFalconKey,
  derToPem,
  parseCertificate,
  type ParsedCertificate,
} from '../../crypto/x509.js';
import { encodeName, readTbs, splitCertificate } from './certificate.js';
import { CaError, CaErrorCode, caError } from './errors.js';

/**
 * The cluster trust bundle: everything an offline verifier needs. Versioned JSON, certificates
 * as PEM, keys and signatures as base64:
 *
 *   { "format": "hypermesh-trust-bundle", "version": 1, "cluster": "<trust domain>",
 *     "chainId": "<consensus chain id>",
 *     "root": { "certificate": "<PEM>", "falconAlgorithm": "falcon-1024-r3",
 *               "falconPublicKey": "<base64>" },
 *     "validators": [ { "name": "<validator>", "intermediate": "<PEM>",
 *                       "falconEndorsement": "<base64>",
 *                       "account": "<hex>" }, ... ] }    -- sorted by name; account optional
 *
 * Each intermediate carries its validator's FALCON-1024 key (the STOQ FALCON key extension) and
 * is endorsed by the root FALCON key: a FALCON signature over the deterministic CBOR
 * ["hypermesh/trustchain-ca/intermediate-endorsement", 1, "falcon-1024-r3", cluster, name,
 * intermediate DER]. So the post-quantum path root FALCON key → validator FALCON key → batch →
 * certificate does not rest on ECDSA anywhere. An intermediate added after genesis is bound to
 * the node (Ed25519) key that holds it: its endorsement is version 2, over [..., 2, ..., name,
 * intermediate DER, node key], and its entry names that key (`account`), so nobody without the
 * root keys can pair the intermediate with another key. Genesis intermediates have version 1
 * endorsements; the genesis document names their keys.
 */
export const TRUST_BUNDLE_FORMAT = 'hypermesh-trust-bundle';
export const TRUST_BUNDLE_VERSION = 1;
export const ENDORSEMENT_CONTEXT = 'hypermesh/trustchain-ca/intermediate-endorsement';
export const MAX_TRUST_BUNDLE_LENGTH = 8 * 1024 * 1024;
export const MAX_BUNDLE_VALIDATORS = 1000;

/** SPIFFE trust domain, as `cluster` in src/crypto/x509.ts. */
const CLUSTER_PATTERN = /^[a-z0-9._-]{1,64}$/;
/** Validator and chain names, as in src/consensus/genesis.ts. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface TrustBundleValidator {
  readonly name: string;
  readonly certificate: Uint8Array;
  readonly parsed: ParsedCertificate;
  readonly falconPublicKey: Uint8Array;
  readonly endorsement: Uint8Array;
  /** The node key the endorsement binds it to (intermediates added after genesis), else null. */
  readonly account: Uint8Array | null;
}

export interface TrustBundle {
  readonly cluster: string;
  readonly chainId: string;
  readonly root: {
    readonly certificate: Uint8Array;
    readonly parsed: ParsedCertificate;
    readonly falconPublicKey: Uint8Array;
  };
  readonly validators: readonly TrustBundleValidator[];
}

export function rootName(cluster: string): Uint8Array {
  return encodeName([
    ['CN', `HyperMesh ${cluster} root CA`],
    ['O', cluster],
  ]);
}

export function intermediateName(cluster: string, validator: string): Uint8Array {
  return encodeName([
    ['CN', validator],
    ['OU', 'validator'],
    ['O', cluster],
  ]);
}

/** Bytes of an Ed25519 node key (an account). */
export const ACCOUNT_KEY_BYTES = 32;

/**
 * What the root FALCON key signs for an intermediate: version 1 (genesis) covers the cluster,
 * name and certificate; version 2 (added after genesis, `account` given) also the node key that
 * will hold it.
 */
export function endorsementMessage(
  cluster: string,
  name: string,
  certificate: Uint8Array,
  account: Uint8Array | null = null,
): Uint8Array {
  const version = account === null ? 1 : 2;
  const fields = [ENDORSEMENT_CONTEXT, version, FALCON_ALGORITHM_ID, cluster, name, certificate];
  return encodeCanonical(account === null ? fields : [...fields, account]);
}

export function isValidatorName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

export function isClusterName(name: unknown): name is string {
  return typeof name === 'string' && CLUSTER_PATTERN.test(name) && name !== '.' && name !== '..';
}

function invalid(message: string, detail: Record<string, unknown> = {}, cause?: unknown): never {
  throw caError(CaErrorCode.INVALID_BUNDLE, message, detail, cause);
}

function isFalconPublicKey(key: Uint8Array): boolean {
  return key.length === FALCON1024_PUBLIC_KEY_BYTES && key[0] === FALCON1024_PUBLIC_KEY_HEADER;
}

export interface TrustBundleContents {
  readonly cluster: string;
  readonly chainId: string;
  readonly rootCertificate: Uint8Array;
  readonly rootFalconPublicKey: Uint8Array;
  readonly validators: readonly {
    readonly name: string;
    readonly certificate: Uint8Array;
    readonly endorsement: Uint8Array;
    /** The node key a version 2 endorsement binds (see `endorsementMessage`); absent: version 1. */
    readonly account?: Uint8Array | null;
  }[];
}

/**
 * Checks bundle contents and returns the bundle: names, the self-signed root (CA, keyCertSign,
 * the root name of this cluster), and for every validator (sorted by name, unique) an
 * intermediate that the root issued, with path length 0, its own name, a FALCON key, validity
 * inside the root's, and a valid root FALCON endorsement. Throws `INVALID_BUNDLE`.
 */
export function buildTrustBundle(
  contents: TrustBundleContents,
  falcon: FalconBackend = defaultFalcon(),
): TrustBundle {
  const { cluster, chainId } = contents;
  if (!isClusterName(cluster)) invalid('cluster is not a SPIFFE trust domain', { cluster });
  if (!isValidatorName(chainId)) invalid('chainId is not a valid chain id', { chainId });
  if (!isFalconPublicKey(contents.rootFalconPublicKey))
    invalid('root FALCON key is not a FALCON-1024 public key');
  const root = parse(contents.rootCertificate, 'root');
  const rootNode = new X509Certificate(root.der);
  if (
    !root.basicConstraints?.ca ||
    root.keyUsage === null ||
    !(root.keyUsage & KeyUsage.keyCertSign)
  ) {
    invalid('root is not a CA certificate with keyCertSign');
  }
  if (!rootNode.checkIssued(rootNode) || !rootNode.verify(rootNode.publicKey))
    invalid('root is not self-signed');
  if (!bytesEqual(readTbs(splitCertificate(root.der).tbs).subjectName, rootName(cluster))) {
    invalid(`root subject is not the root name of cluster ${cluster}`);
  }
  if (contents.validators.length > MAX_BUNDLE_VALIDATORS) invalid('too many validators');
  const validators = contents.validators.map((entry, index): TrustBundleValidator => {
    const { name } = entry;
    if (!isValidatorName(name)) invalid('validator name is invalid', { index, name: String(name) });
    const previous = contents.validators[index - 1];
    if (previous !== undefined && !(previous.name < name)) {
      invalid('validators must be sorted by name without duplicates', { index, name });
    }
    const parsed = parse(entry.certificate, `intermediate ${name}`);
    const node = new X509Certificate(parsed.der);
    if (!node.checkIssued(rootNode) || !node.verify(rootNode.publicKey)) {
      invalid(`intermediate ${name} is not issued by the root`, { name });
    }
    if (
      !parsed.basicConstraints?.ca ||
      parsed.basicConstraints.pathLength !== 0 ||
      parsed.keyUsage === null ||
      !(parsed.keyUsage & KeyUsage.keyCertSign)
    ) {
      invalid(`intermediate ${name} is not a CA with path length 0 and keyCertSign`, { name });
    }
    if (
      !bytesEqual(
        readTbs(splitCertificate(parsed.der).tbs).subjectName,
        intermediateName(cluster, name),
      )
    ) {
      invalid(`intermediate ${name} does not carry the name of validator ${name}`, { name });
    }
    if (parsed.notBefore < root.notBefore || parsed.notAfter > root.notAfter) {
      invalid(`intermediate ${name} outlives the root`, { name });
    }
    let falconPublicKey: Uint8Array;
    try {
      falconPublicKey = certificateFalconKey(parsed);
    } catch (error) {
      return invalid(`intermediate ${name} carries no FALCON-1024 key`, { name }, error);
    }
    const account = entry.account ?? null;
    if (account !== null && account.length !== ACCOUNT_KEY_BYTES) {
      invalid(`the node key of ${name} is not ${ACCOUNT_KEY_BYTES} bytes`, { name });
    }
    if (
      !falcon.verify(
        entry.endorsement,
        endorsementMessage(cluster, name, parsed.der, account),
        contents.rootFalconPublicKey,
      )
    ) {
      invalid(`the root FALCON endorsement of ${name} does not verify`, { name });
    }
    return {
      name,
      certificate: parsed.der,
      parsed,
      falconPublicKey,
      endorsement: entry.endorsement.slice(),
      account: account === null ? null : account.slice(),
    };
  });
  return {
    cluster,
    chainId,
    root: {
      certificate: root.der,
      parsed: root,
      falconPublicKey: contents.rootFalconPublicKey.slice(),
    },
    validators,
  };
}

function parse(der: Uint8Array, what: string): ParsedCertificate {
  try {
    return parseCertificate(der);
  } catch (error) {
    return invalid(`${what} certificate does not parse: ${(error as Error).message}`, {}, error);
  }
}

export function encodeTrustBundle(bundle: TrustBundle): string {
  const document = {
    format: TRUST_BUNDLE_FORMAT,
    version: TRUST_BUNDLE_VERSION,
    cluster: bundle.cluster,
    chainId: bundle.chainId,
    root: {
      certificate: derToPem(bundle.root.certificate),
      falconAlgorithm: FALCON_ALGORITHM_ID,
      falconPublicKey: toBase64(bundle.root.falconPublicKey),
    },
    validators: bundle.validators.map((validator) => ({
      name: validator.name,
      intermediate: derToPem(validator.certificate),
      falconEndorsement: toBase64(validator.endorsement),
      ...(validator.account === null ? {} : { account: toHex(validator.account) }),
    })),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);
const pem = z.string().max(64 * 1024);
const documentSchema = z.strictObject({
  format: z.literal(TRUST_BUNDLE_FORMAT),
  version: z.literal(TRUST_BUNDLE_VERSION),
  cluster: z.string(),
  chainId: z.string(),
  root: z.strictObject({
    certificate: pem,
    falconAlgorithm: z.literal(FALCON_ALGORITHM_ID),
    falconPublicKey: base64.max(4096),
  }),
  validators: z
    .array(
      z.strictObject({
        name: z.string(),
        intermediate: pem,
        falconEndorsement: base64.max(2 * FALCON1024_MAX_SIGNATURE_BYTES),
        account: z
          .string()
          .regex(/^[0-9a-f]{64}$/)
          .optional(),
      }),
    )
    .min(1)
    .max(MAX_BUNDLE_VALIDATORS),
});

/** Exactly one CERTIFICATE block, nothing but whitespace around it. */
function strictPem(text: string, what: string): Uint8Array {
  const match =
    /^\s*-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----\s*$/.exec(
      text,
    );
  if (!match) invalid(`${what} is not exactly one PEM CERTIFICATE block`);
  return fromBase64((match[1] as string).replace(/\s+/g, ''));
}

/** Parses and fully checks a trust bundle file (see `buildTrustBundle`). Throws `INVALID_BUNDLE`. */
export function parseTrustBundle(
  text: string,
  falcon: FalconBackend = defaultFalcon(),
): TrustBundle {
  if (typeof text !== 'string' || text.length > MAX_TRUST_BUNDLE_LENGTH)
    invalid('trust bundle is too large');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return invalid('trust bundle is not JSON', {}, error);
  }
  const version = (json as { version?: unknown } | null)?.version;
  if (
    (json as { format?: unknown } | null)?.format === TRUST_BUNDLE_FORMAT &&
    version !== TRUST_BUNDLE_VERSION
  ) {
    invalid(`unsupported trust bundle version ${JSON.stringify(version)}`, {
      version: version ?? null,
    });
  }
  const parsed = documentSchema.safeParse(json);
  if (!parsed.success)
    invalid(
      `malformed trust bundle: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const document = parsed.data;
  try {
    return buildTrustBundle(
      {
        cluster: document.cluster,
        chainId: document.chainId,
        rootCertificate: strictPem(document.root.certificate, 'root.certificate'),
        rootFalconPublicKey: fromBase64(document.root.falconPublicKey),
        validators: document.validators.map((validator) => ({
          name: validator.name,
          certificate: strictPem(validator.intermediate, `intermediate ${validator.name}`),
          endorsement: fromBase64(validator.falconEndorsement),
          account: validator.account === undefined ? null : fromHex(validator.account),
        })),
      },
      falcon,
    );
  } catch (error) {
    if (error instanceof CaError) throw error;
    return invalid(`malformed trust bundle: ${(error as Error).message}`, {}, error);
  }
}

/** PEM files for tools such as `openssl verify -CAfile root.pem -untrusted intermediates.pem`. */
export function trustBundlePem(bundle: TrustBundle): {
  readonly root: string;
  readonly intermediates: string;
} {
  return {
    root: derToPem(bundle.root.certificate),
    intermediates: bundle.validators.map((validator) => derToPem(validator.certificate)).join(''),
  };
}
