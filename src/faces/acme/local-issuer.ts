import type { KeyObject } from 'node:crypto';
import { defaultFalcon, type FalconBackend } from '../../crypto/falcon.js';
import { taggedHash } from '../../crypto/hash.js';
import type { ScryptParameters } from '../../crypto/keyfile.js';
import { derToPem, parseCertificate } from '../../crypto/x509.js';
import { trustBundlePem, type TrustBundle } from '../../trustchain/ca/bundle.js';
import {
  createDeterministicSigner,
  type CertificateSigner,
} from '../../trustchain/ca/certificate.js';
import { CaError, CaErrorCode } from '../../trustchain/ca/errors.js';
import { createValidatorCaRequest, runGenesisCeremony } from '../../trustchain/ca/hierarchy.js';
import { issueBlock, parseIssuer, type Issuer } from '../../trustchain/ca/issue.js';
import {
  checkRequest,
  parseCertificateRequest,
  type IssuancePolicy,
  type Refusal,
} from '../../trustchain/ca/request.js';
import {
  AcmeIssuerError,
  AcmeIssuerErrorCode,
  type AcmeIssueRequest,
  type AcmeIssuedCertificate,
  type AcmeIssuer,
  type AcmeRevokeRequest,
} from './issuer.js';

/**
 * An in-process issuer over the CA core: each `issue` is a one-certificate "block" issued by one
 * validator intermediate with the deterministic issuance of src/trustchain/ca/issue.ts (the
 * same TBSCertificate, batch-inclusion extension and FALCON batch signature the consensus CA
 * produces), under the `service` profile. It backs the ACME tests and a single-node development
 * setup; a cluster uses the consensus `ca` module instead. Revocations are kept in memory and
 * listed by `revocations()` — there is no CRL or OCSP behind this issuer.
 */

export interface LocalIssuerOptions {
  /** The trust bundle holding `validator`'s intermediate. */
  readonly bundle: TrustBundle;
  readonly validator: string;
  /** The intermediate's ECDSA P-256 private key. */
  readonly signingKey: KeyObject;
  /** The validator's FALCON-1024 secret key (signs the batch statement). */
  readonly falconSecretKey: Uint8Array;
  /** Key types, RSA minimum, maximum lifetimes; the cluster always comes from the bundle. */
  readonly policy?: Omit<IssuancePolicy, 'cluster'>;
  /** Certificate lifetime asked for (seconds); the `service` profile's maximum when absent. */
  readonly lifetimeSeconds?: number;
  readonly now?: () => number;
  readonly falcon?: FalconBackend;
}

export interface LocalRevocation {
  readonly serialHex: string;
  readonly reason: number;
  readonly revokedMs: number;
}

const REFUSALS_ABOUT_THE_KEY: ReadonlySet<Refusal['code']> = new Set([
  'key_type_not_allowed',
  'key_too_weak',
]);

export class LocalIssuer implements AcmeIssuer {
  readonly issuer: Issuer;
  /** The root certificate, PEM: what relying parties trust. */
  readonly rootPem: string;
  /** The issuing intermediate, PEM: the chain served after each leaf. */
  readonly chainPem: string;
  private readonly signer: CertificateSigner;
  private readonly revoked = new Map<string, LocalRevocation>();
  private height = 0;
  private readonly now: () => number;
  private readonly falcon: FalconBackend;

  constructor(private readonly options: LocalIssuerOptions) {
    const entry = options.bundle.validators.find((v) => v.name === options.validator);
    if (entry === undefined) {
      throw new AcmeIssuerError(
        AcmeIssuerErrorCode.UNAVAILABLE,
        `the trust bundle has no validator ${options.validator}`,
      );
    }
    this.issuer = parseIssuer(entry.certificate);
    this.signer = createDeterministicSigner(options.signingKey);
    if (!this.signer.publicKey.equals(this.issuer.publicKey)) {
      throw new AcmeIssuerError(
        AcmeIssuerErrorCode.UNAVAILABLE,
        `the signing key is not ${options.validator}'s intermediate key`,
      );
    }
    this.rootPem = trustBundlePem(options.bundle).root;
    this.chainPem = derToPem(entry.certificate);
    this.now = options.now ?? Date.now;
    this.falcon = options.falcon ?? defaultFalcon();
  }

  async issue(request: AcmeIssueRequest): Promise<AcmeIssuedCertificate> {
    const parsed = this.parse(request);
    const decision = checkRequest(
      parsed,
      { ...this.options.policy, cluster: this.options.bundle.cluster },
      {
        account: request.accountId,
        profiles: ['service'],
        // Domain control was proven through ACME authorizations for exactly these names.
        dnsZones: parsed.dnsNames.map((name) => (name.startsWith('*.') ? name.slice(2) : name)),
        wildcards: true,
        ipRanges: [...parsed.ipAddresses],
        uriPrefixes: [],
      },
    );
    if (!decision.ok) {
      const keyOnly = decision.refusals.every((r) => REFUSALS_ABOUT_THE_KEY.has(r.code));
      throw new AcmeIssuerError(
        keyOnly ? AcmeIssuerErrorCode.BAD_CSR : AcmeIssuerErrorCode.REJECTED_IDENTIFIER,
        `the CA policy refuses this request: ${decision.refusals.map((r) => r.code).join(', ')}`,
        { refusals: decision.refusals },
      );
    }
    this.height += 1;
    const { certificates } = await issueBlock(
      {
        chainId: this.options.bundle.chainId,
        height: this.height,
        blockTime: this.now(),
        issuer: this.issuer,
        items: [
          {
            txHash: taggedHash(
              'hypermesh/acme/local-issuer/order/v1',
              request.orderId,
              request.csrDer,
            ),
            request: parsed,
            lifetimeSeconds: decision.lifetimeSeconds,
          },
        ],
      },
      { signer: this.signer, falconSecretKey: this.options.falconSecretKey, falcon: this.falcon },
    );
    return { certificatePem: derToPem(certificates[0] as Uint8Array), chainPem: this.chainPem };
  }

  async revoke(request: AcmeRevokeRequest): Promise<void> {
    const parsed = parseCertificate(request.certDer);
    if (parsed.serialNumber !== request.serialHex) {
      throw new AcmeIssuerError(
        AcmeIssuerErrorCode.UNAVAILABLE,
        "the serial is not the certificate's serial",
      );
    }
    if (!this.revoked.has(request.serialHex)) {
      this.revoked.set(request.serialHex, {
        serialHex: request.serialHex,
        reason: request.reason,
        revokedMs: this.now(),
      });
    }
  }

  revocations(): LocalRevocation[] {
    return [...this.revoked.values()];
  }

  private parse(request: AcmeIssueRequest) {
    try {
      return parseCertificateRequest(
        {
          profile: 'service',
          csr: request.csrDer,
          dnsNames: request.identifiers.filter((i) => i.type === 'dns').map((i) => i.value),
          ipAddresses: request.identifiers.filter((i) => i.type === 'ip').map((i) => i.value),
          ...(this.options.lifetimeSeconds === undefined
            ? {}
            : { lifetimeSeconds: this.options.lifetimeSeconds }),
        },
        { falcon: this.falcon },
      );
    } catch (error) {
      if (error instanceof CaError) {
        const nameProblem =
          error.code === CaErrorCode.INVALID_NAME ||
          (error.code === CaErrorCode.INVALID_REQUEST &&
            error.detail.reason !== 'csr_names_mismatch');
        throw new AcmeIssuerError(
          nameProblem ? AcmeIssuerErrorCode.REJECTED_IDENTIFIER : AcmeIssuerErrorCode.BAD_CSR,
          error.message,
          { caError: error.code },
          { cause: error },
        );
      }
      throw error;
    }
  }
}

export interface LocalCaOptions {
  readonly cluster: string;
  readonly chainId: string;
  /** Encrypts the root key files the ceremony returns (at least 12 characters). */
  readonly passphrase: string;
  /** The one validator's name (default `local`). */
  readonly validator?: string;
  readonly scrypt?: ScryptParameters;
  readonly falcon?: FalconBackend;
  readonly now?: () => number;
  readonly policy?: Omit<IssuancePolicy, 'cluster'>;
  readonly lifetimeSeconds?: number;
}

export interface LocalCa {
  readonly issuer: LocalIssuer;
  readonly bundle: TrustBundle;
  /** The root keys, passphrase-encrypted (src/crypto/keyfile.ts). */
  readonly rootKeyFiles: { readonly ecdsa: string; readonly falcon: string };
}

/**
 * A single-validator CA for development and tests: the genesis ceremony of
 * src/trustchain/ca/hierarchy.ts with one validator, whose intermediate key and FALCON key stay
 * in this process and back a `LocalIssuer`.
 */
export async function createLocalCa(options: LocalCaOptions): Promise<LocalCa> {
  const falcon = options.falcon ?? defaultFalcon();
  const now = options.now ?? Date.now;
  const validator = options.validator ?? 'local';
  const { request, keys } = await createValidatorCaRequest({ name: validator, falcon });
  const ceremony = await runGenesisCeremony({
    cluster: options.cluster,
    chainId: options.chainId,
    // An hour back, so certificates issued "now" on a host whose clock lags a little still fit.
    time: new Date(now() - 3_600_000),
    passphrase: options.passphrase,
    validators: [request],
    falcon,
    ...(options.scrypt === undefined ? {} : { scrypt: options.scrypt }),
  });
  const issuer = new LocalIssuer({
    bundle: ceremony.bundle,
    validator,
    signingKey: keys.ecdsa.privateKey,
    falconSecretKey: keys.falcon.secretKey,
    falcon,
    now,
    ...(options.policy === undefined ? {} : { policy: options.policy }),
    ...(options.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: options.lifetimeSeconds }),
  });
  return { issuer, bundle: ceremony.bundle, rootKeyFiles: ceremony.rootKeyFiles };
}
