import { lstat, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { Command } from '../commands.js';
import type { NodeRpcClient } from '../../consensus/net/index.js';
import { CliError } from '../cli-error.js';
import { checkOutputPath, writeFileAtomically } from '../io.js';
import { readGenesisFile } from '../cluster-layout.js';
import {
  DEFAULT_CLUSTER_FILE,
  findNode,
  loadClusterTarget,
  openOperatorParts,
} from '../operator.js';
import { parseWithPositionals } from './block.js';
import { integerOption } from './cluster.js';
import { derToPem, pemToDerList } from '../../crypto/x509.js';
import type { NodeIdentityKeys } from '../../crypto/keyfile.js';
import { createCsr } from '../../trustchain/ca/csr.js';
import type { stoqIdentityRequestParts } from '../cert-tools.js';
import type { InclusionProofSource } from '../cert-proof.js';
import { PROFILE_NAMES, type ProfileName } from '../../trustchain/ca/profiles.js';
import type { CertificateRequestInput } from '../../trustchain/ca/request.js';
import { parseTrustBundle, type TrustBundle } from '../../trustchain/ca/bundle.js';
import { CaError } from '../../trustchain/ca/errors.js';
import { verifyIssuedCertificate } from '../../trustchain/ca/verify.js';
import {
  REVOCATION_REASONS,
  lacksIssuanceExtensions,
  signRevocation,
} from '../../trustchain/ca-module/index.js';
import { stoqFailure } from '../tx-submit.js';

/**
 * `hypermesh cert request|renew|revoke|show|proof|verify` and `hypermesh ct sth|verify|proof`: the TrustChain
 * CA from the command line (docs/cli.md, docs/ca.md).
 */

const clusterOptions = {
  cluster: { type: 'string' },
  node: { type: 'string' },
  'timeout-ms': { type: 'string' },
} as const;

async function readCertificate(file: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const list = pemToDerList(text);
  if (list.length === 0) throw new CliError(`${file} holds no PEM certificate`);
  return list[0] as Uint8Array;
}

async function withCluster<T>(
  values: { cluster?: string; node?: string },
  work: (context: {
    client: NodeRpcClient;
    genesis: Awaited<ReturnType<typeof readGenesisFile>>;
    operatorKey: KeyObject;
    nodeName: string;
    /** The node's CT log audit paths (`hypermesh.trustchain.ca.v1` `inclusionProof`). */
    inclusionProof: InclusionProofSource;
  }) => Promise<T>,
): Promise<T> {
  const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
  const node =
    values.node === undefined
      ? (target.nodes[0] as (typeof target.nodes)[number])
      : findNode(target, values.node);
  const genesis = await readGenesisFile(target.genesisFile);
  const { operatorKey } = await import('../kv-tools.js');
  const privateKey = await operatorKey(target.operator.keyFile);
  // The parts of `openOperatorSession`, so that the same endpoint also reaches the ca service.
  const operator = await openOperatorParts(target);
  try {
    const { createNodeRpcClient } = await import('../../consensus/net/index.js');
    const { withCommittedRoots } = await import('../verified-root.js');
    const { caService } = await import('../../faces/ca-rpc.js');
    const { caRpcInclusionProof } = await import('../cert-proof.js');
    const { endpoint } = operator.parts;
    return await work({
      client: withCommittedRoots(
        createNodeRpcClient({ endpoint, peer: node.name }),
        operator.genesis,
      ),
      genesis,
      operatorKey: privateKey,
      nodeName: node.name,
      inclusionProof: caRpcInclusionProof(endpoint.client(caService, node.name)),
    }).catch(stoqFailure(node.name));
  } finally {
    await operator.close();
  }
}

/** `--max-block-age`: at most ten years (a proof or answer of an old block, knowingly). */
const MAX_PROOF_BLOCK_AGE_SECONDS = 315_360_000;

/** `--max-block-age SECONDS` in ms (default: the nodes' `ca.maxBlockAgeSeconds` default). */
async function maxBlockAgeOf(value: string | undefined): Promise<number> {
  const { DEFAULT_PROOF_MAX_BLOCK_AGE_MS } = await import('../cert-proof.js');
  const seconds = integerOption(
    value,
    'max-block-age',
    { min: 1, max: MAX_PROOF_BLOCK_AGE_SECONDS },
    DEFAULT_PROOF_MAX_BLOCK_AGE_MS / 1000,
  );
  return seconds * 1000;
}

function timeoutOf(value: string | undefined): number {
  return integerOption(value, 'timeout-ms', { min: 100, max: 3_600_000 }, 60_000);
}

function reasonOf(value: string | undefined): number {
  if (value === undefined) return 0;
  const byName = Object.entries(REVOCATION_REASONS).find(([, name]) => name === value);
  if (byName !== undefined) return Number(byName[0]);
  if (/^\d+$/.test(value) && REVOCATION_REASONS[Number(value)] !== undefined) return Number(value);
  throw new CliError(
    `--reason ${value}: one of ${Object.entries(REVOCATION_REASONS)
      .map(([code, name]) => `${name} (${code})`)
      .join(', ')}`,
  );
}

/** Refuses `file` when anything is there, a dangling link included (`lstat`, not `access`). */
async function refuseExisting(file: string, hint: string): Promise<void> {
  const present = await lstat(file).then(
    () => true,
    () => false,
  );
  if (present) throw new CliError(`${file} exists; ${hint}`);
}

async function writeOutputs(
  out: string,
  published: { certificate: Uint8Array; issuer: string; serial: Uint8Array },
  genesis: Awaited<ReturnType<typeof readGenesisFile>>,
  client: NodeRpcClient,
): Promise<{ cert: string; chain: string }> {
  const { committedCaCheck, genesisTrustBundle } = await import('../cert-tools.js');
  const { certificateChainPem, readIntermediates, trustBundleInEffect } =
    await import('../../trustchain/ca-module/index.js');
  const genesisBundle = genesisTrustBundle(genesis);
  // An issuer added after genesis (docs/ca.md, "Adding a validator's intermediate") is in the
  // bundle in effect, read with proofs from the node whose roots the quorum committed.
  const bundle = genesisBundle.validators.some((v) => v.name === published.issuer)
    ? genesisBundle
    : trustBundleInEffect(
        genesisBundle,
        (await readIntermediates((request) => client.query(request), committedCaCheck(client)))
          .added,
      );
  const cert = `${out}.pem`;
  const chain = `${out}.chain.pem`;
  const serial = Buffer.from(published.serial).toString('hex');
  const written = (file: string) => (error: Error) => {
    throw new CliError(
      `certificate ${serial} was issued but cannot be written to ${file}: ${error.message}`,
      1,
    );
  };
  await writeFileAtomically(cert, derToPem(published.certificate)).catch(written(cert));
  await writeFileAtomically(
    chain,
    certificateChainPem(bundle, published.certificate, published.issuer),
  ).catch(written(chain));
  return { cert, chain };
}

/**
 * Refuses, before anything is submitted, a PREFIX whose files cannot be written: the
 * certificate would be issued (and a generated key lost) for nothing.
 */
async function checkOutputPrefix(out: string): Promise<void> {
  await checkOutputPath(`${out}.pem`, `--out ${out}`);
  await checkOutputPath(`${out}.chain.pem`, `--out ${out}`);
}

/** Where `cert request|renew` write the certificate proof: --proof-out FILE, else PREFIX.proof.json. */
/**
 * Where the certificate proof goes; refused (exit 2) when that is a file the same command
 * writes or reads (`--out`'s key, certificate and chain, `inputs`): the proof would replace it.
 */
function proofFileOf(
  out: string,
  proofOut: string | undefined,
  inputs: readonly (string | undefined)[] = [],
): string {
  const file = proofOut ?? `${out}.proof.json`;
  const flag = proofOut === undefined ? `--out ${out}` : `--proof-out ${file}`;
  const taken = [
    `${out}.pem`,
    `${out}.chain.pem`,
    `${out}.key`,
    ...inputs.filter((input) => input !== undefined),
  ];
  const clash = taken.find((other) => path.resolve(other) === path.resolve(file));
  if (clash !== undefined) {
    throw new CliError(
      `${flag}: the certificate proof would overwrite ${clash}, which this command also uses; choose another file`,
    );
  }
  return file;
}

/**
 * Fetches the certificate proof (docs/ca.md, "Offline verification") from the node of
 * `context`, verified against the genesis, and writes it to `file` atomically. `issued`: the
 * certificate is already written, so a failure here says how to fetch the proof later.
 */
async function writeCertificateProof(
  io: { out(text: string): void },
  context: {
    client: NodeRpcClient;
    genesis: Awaited<ReturnType<typeof readGenesisFile>>;
    inclusionProof: InclusionProofSource;
  },
  certificate: Uint8Array,
  file: string,
  timeoutMs: number,
  issued?: { readonly cert: string; readonly hint: string },
  maxBlockAgeMs?: number,
): Promise<void> {
  const { describeCertificateProof, fetchCertificateProof, issuedWithoutProofError } =
    await import('../cert-proof.js');
  const { certificateProofToJson } =
    await import('../../trustchain/ca-module/certificate-proof.js');
  try {
    const { proof, verified } = await fetchCertificateProof({
      ...context,
      certificate,
      timeoutMs,
      ...(maxBlockAgeMs === undefined ? {} : { maxBlockAgeMs }),
    });
    await writeFileAtomically(file, certificateProofToJson(proof)).catch((error: Error) => {
      throw new CliError(`cannot write ${file}: ${error.message}`, 1);
    });
    for (const line of describeCertificateProof(verified)) io.out(`  ${line}\n`);
    io.out(`  wrote ${file}\n`);
  } catch (error) {
    const { UnverifiedCheckpointError } = await import('../cert-tools.js');
    const { QuorumCheckpointErrorCode } = await import('../../trustchain/ca-module/index.js');
    if (
      issued !== undefined &&
      error instanceof UnverifiedCheckpointError &&
      error.code === QuorumCheckpointErrorCode.VALIDATOR_SET_CHANGED
    ) {
      // Not a failure: the offline verifier knows only the genesis validator set.
      io.out(
        `  no proof written: the latest block is decided by a validator set other than the genesis set, ` +
          `which an offline proof cannot carry; check the certificate with "cert verify --cluster"\n`,
      );
      return;
    }
    const { StoqError } = await import('../../stoq/index.js');
    if (issued !== undefined && (error instanceof CliError || error instanceof StoqError)) {
      throw issuedWithoutProofError(error, issued, file);
    }
    throw error;
  }
}

function clusterHint(values: { cluster?: string; node?: string }): string {
  return (
    (values.cluster === undefined ? '' : ` --cluster ${values.cluster}`) +
    (values.node === undefined ? '' : ` --node ${values.node}`)
  );
}

function report(
  io: { out(text: string): void },
  published: {
    serial: Uint8Array;
    txHash: string;
    height: number;
    publishedAt: number;
    issuer: string;
  },
  files: { cert: string; chain: string },
): void {
  io.out(
    `certificate ${Buffer.from(published.serial).toString('hex')} (tx ${published.txHash}, committed at height ${published.height}, ` +
      `published at height ${published.publishedAt} by ${published.issuer})\n`,
  );
  io.out(`  wrote ${files.cert} and ${files.chain}\n`);
}

/** `--stoq-identity` refuses what cannot give a STOQ identity, before anything is generated. */
function checkStoqIdentityOptions(values: {
  csr?: string;
  'key-type'?: string;
  uri?: string[];
}): void {
  if (values.csr !== undefined) {
    throw new CliError(
      "--stoq-identity builds the CSR from the identity's Ed25519 key; it does not take --csr " +
        '(use --identity-key FILE to certify an existing node-identity key)',
    );
  }
  const keyType = values['key-type'];
  if (keyType !== undefined && keyType !== 'ed25519') {
    throw new CliError(
      `--stoq-identity needs an Ed25519 key (STOQ signs with Ed25519 and FALCON-1024), not --key-type ${keyType}`,
    );
  }
  if ((values.uri ?? []).length !== 1) {
    throw new CliError(
      '--stoq-identity needs exactly one --uri spiffe://<cluster>/<role>/<name>: a STOQ identity is that URI',
    );
  }
}

interface StoqIdentity {
  readonly keys: NodeIdentityKeys;
  readonly parts: Awaited<ReturnType<typeof stoqIdentityRequestParts>>;
  /** True when generated here, so PREFIX.key is to be written. */
  readonly generated: boolean;
}

async function keyFileFailure(error: unknown, exitCode = 2): Promise<never> {
  const { KeyFileError } = await import('../../crypto/keyfile.js');
  if (error instanceof KeyFileError) throw new CliError(error.message, exitCode);
  throw error;
}

/**
 * The identity's keys, read from `file` or generated (refusing an existing `keyOut` first, so a
 * key whose certificate is issued is never lost to a write that fails afterwards), with the
 * CSR and FALCON proof of the request.
 */
async function stoqIdentityKeys(file: string | undefined, keyOut: string): Promise<StoqIdentity> {
  const { readKeyFile } = await import('../../crypto/keyfile.js');
  let keys: NodeIdentityKeys;
  if (file !== undefined) {
    keys = (await readKeyFile(file, { kind: 'node-identity' }).catch(keyFileFailure)).keys;
  } else {
    await refuseExisting(
      keyOut,
      `remove it, or pass --identity-key ${keyOut} to certify the keys it holds`,
    );
    const { generateNodeIdentity } = await import('../dev-ca.js');
    keys = await generateNodeIdentity();
  }
  const { stoqIdentityRequestParts } = await import('../cert-tools.js');
  return { keys, parts: await stoqIdentityRequestParts(keys), generated: file === undefined };
}

const request: Command = {
  name: 'cert request',
  summary: 'request a certificate from the TrustChain CA and wait for its publication',
  help: `
usage: hypermesh cert request --out PREFIX [--profile service|client|node] [--dns NAME ...]
                              [--ip ADDR ...] [--uri URI ...] [--key-type p256|ed25519|rsa]
                              [--csr FILE] [--stoq-identity [--identity-key FILE]]
                              [--lifetime SECONDS] [--proof-out FILE] [--cluster FILE|DIR]
                              [--node NAME|ADDR] [--timeout-ms MS] [--max-block-age SECONDS]

Generates a private key and a PKCS#10 request (or takes --csr FILE, PEM or DER), submits a
"ca" request transaction signed with the operator key, waits until it is committed and until a
validator has published the certificate (docs/ca.md, "Publication"), and writes
PREFIX.pem (the certificate), PREFIX.chain.pem (certificate + intermediate) and, when it
generated the key, PREFIX.key (PKCS#8 PEM, mode 0600). Names must be allowed for the operator
account (genesis app.ca grants). It then fetches the certificate proof — the quorum-signed tree
head of the block after publication, the certificate's state proofs under that block and its
CT log inclusion proof, verified against the genesis — and writes it to PREFIX.proof.json
(--proof-out FILE), for "hypermesh cert verify --proof" (docs/ca.md, "Offline verification").

With --stoq-identity the certificate is a STOQ identity (docs/ca.md, "Revocation in STOQ"):
the key is an Ed25519 + FALCON-1024 pair, the CSR is for the Ed25519 key and the request
carries the FALCON key with its proof of possession, so the leaf holds both. PREFIX.key is
then a node-identity key file (docs/crypto.md key files, mode 0600) that a STOQ endpoint reads
with PREFIX.chain.pem: identity.keyFile and identity.certificateFile of its config. The
profile defaults to client, and --uri spiffe://<cluster>/<role>/<name> is required, e.g.
spiffe://<cluster>/client/alice (the validator and node roles need the node profile).
With --identity-key FILE the pair comes from that existing (unencrypted) node-identity key
file and no PREFIX.key is written. --csr and --key-type p256|rsa do not combine with it.

options:
  --profile P         service (default; client with --stoq-identity), client or node
  --dns, --ip, --uri  names (repeatable)
  --key-type T        key to generate: p256 (default), ed25519 or rsa (2048 bits)
  --csr FILE          use this CSR instead of generating a key
  --stoq-identity     a STOQ identity: Ed25519 + FALCON-1024 key, node-identity PREFIX.key
  --identity-key FILE with --stoq-identity: certify this node-identity key file's keys
  --lifetime SECONDS  requested lifetime (default: the profile's maximum)
  --proof-out FILE    where to write the certificate proof (default PREFIX.proof.json)
  --cluster FILE|DIR  cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --node NAME|ADDR    node to submit to (default: the first)
  --timeout-ms MS     how long to wait for commit and publication (default 60000)
  --max-block-age S   the oldest latest block the proof is made from (default 300; as
                      "cert proof"). A refused proof does not undo the issuance: the message
                      says the certificate WAS issued and written, and how to fetch the proof
`,
  async run(args, io) {
    const { values } = parseWithPositionals(
      args,
      {
        ...clusterOptions,
        out: { type: 'string' },
        profile: { type: 'string' },
        dns: { type: 'string', multiple: true },
        ip: { type: 'string', multiple: true },
        uri: { type: 'string', multiple: true },
        'key-type': { type: 'string' },
        csr: { type: 'string' },
        'stoq-identity': { type: 'boolean' },
        'identity-key': { type: 'string' },
        lifetime: { type: 'string' },
        'proof-out': { type: 'string' },
        'max-block-age': { type: 'string' },
      },
      [],
    );
    const maxBlockAgeMs = await maxBlockAgeOf(values['max-block-age']);
    if (values.out === undefined) throw new CliError('--out PREFIX is required (see --help)');
    const stoqIdentity = values['stoq-identity'] === true;
    if (stoqIdentity) checkStoqIdentityOptions(values);
    else if (values['identity-key'] !== undefined) {
      throw new CliError('--identity-key FILE needs --stoq-identity');
    }
    const profile = (values.profile ?? (stoqIdentity ? 'client' : 'service')) as ProfileName;
    if (!PROFILE_NAMES.includes(profile)) {
      throw new CliError(`--profile must be one of ${PROFILE_NAMES.join(', ')}`);
    }
    const keyType = values['key-type'] ?? 'p256';
    if (!['p256', 'ed25519', 'rsa'].includes(keyType)) {
      throw new CliError('--key-type must be p256, ed25519 or rsa');
    }
    const lifetime =
      values.lifetime === undefined
        ? undefined
        : integerOption(values.lifetime, 'lifetime', { min: 1, max: 398 * 86_400 }, 1);
    const timeoutMs = timeoutOf(values['timeout-ms']);
    await checkOutputPrefix(values.out);
    const proofFile = proofFileOf(values.out, values['proof-out'], [
      values.csr,
      values['identity-key'],
    ]);
    await checkOutputPath(
      proofFile,
      values['proof-out'] === undefined ? `--out ${values.out}` : `--proof-out ${proofFile}`,
    );
    const tools = await import('../cert-tools.js');
    let csr: Uint8Array | string;
    let key: KeyObject | null = null;
    let identity: StoqIdentity | null = null;
    if (stoqIdentity) {
      identity = await stoqIdentityKeys(values['identity-key'], `${values.out}.key`);
      csr = identity.parts.csr;
    } else if (values.csr !== undefined) {
      const bytes = await readFile(values.csr).catch((error: Error) => {
        throw new CliError(`cannot read ${values.csr}: ${error.message}`);
      });
      csr = bytes.toString('latin1').includes('-----BEGIN')
        ? bytes.toString('utf8')
        : new Uint8Array(bytes);
    } else {
      // Checked before anything is requested: the certificate would be issued for a key that
      // then has nowhere to go.
      await refuseExisting(`${values.out}.key`, 'remove it or choose another --out PREFIX');
      key = tools.generateSubjectKey(keyType as 'p256' | 'ed25519' | 'rsa');
      csr = createCsr({ privateKey: key });
    }
    const out = values.out;
    return withCluster(values, async (context) => {
      const { client, genesis, operatorKey } = context;
      const published = await tools.requestCertificate({
        client,
        genesis,
        privateKey: operatorKey,
        request: {
          profile,
          csr,
          dnsNames: values.dns ?? [],
          ipAddresses: values.ip ?? [],
          uris: values.uri ?? [],
          ...(lifetime === undefined ? {} : { lifetimeSeconds: lifetime }),
          ...(identity === null ? {} : { falcon: identity.parts.falcon }),
        },
        timeoutMs,
      });
      // From here on the certificate is issued: a failure is a runtime one (exit code 1).
      if (identity?.generated === true) {
        const { writeKeyFile } = await import('../../crypto/keyfile.js');
        await writeKeyFile(`${out}.key`, { kind: 'node-identity', keys: identity.keys }).catch(
          (error: unknown) => keyFileFailure(error, 1),
        );
      }
      if (key !== null) {
        // Exclusive create: never through an existing file or a link placed there meanwhile.
        await writeFile(`${out}.key`, key.export({ format: 'pem', type: 'pkcs8' }) as string, {
          flag: 'wx',
          mode: 0o600,
        }).catch((error: Error) => {
          throw new CliError(`cannot write the private key to ${out}.key: ${error.message}`, 1);
        });
      }
      const files = await writeOutputs(out, published, genesis, client);
      report(io, published, files);
      await writeCertificateProof(
        io,
        context,
        published.certificate,
        proofFile,
        timeoutMs,
        { cert: files.cert, hint: clusterHint(values) },
        maxBlockAgeMs,
      );
      return 0;
    });
  },
};

const renew: Command = {
  name: 'cert renew',
  summary: 'renew a certificate: a new one for the same key and names',
  help: `
usage: hypermesh cert renew CERT --out PREFIX [--lifetime SECONDS] [--identity-key FILE]
                            [--proof-out FILE] [--cluster FILE|DIR] [--node NAME|ADDR]
                            [--timeout-ms MS] [--max-block-age SECONDS]

Submits a "ca" renew transaction for the certificate in CERT (PEM) from the operator key
(the account that requested it), waits for the new certificate's publication and writes
PREFIX.pem, PREFIX.chain.pem and the new certificate's proof PREFIX.proof.json (--proof-out
FILE; as "cert request", with its --max-block-age). The key stays the same.

A genesis bootstrap certificate (cluster init's: no committed request to re-issue) needs
--identity-key FILE, the node-identity key file of the certificate's keys (e.g.
node-K/node-K.key): the renew carries a request built from the certificate and signed with
them (docs/ca.md, "Renewing a genesis certificate"). Without --lifetime such a renewal gets
its profile's longest lifetime.
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      {
        ...clusterOptions,
        out: { type: 'string' },
        lifetime: { type: 'string' },
        'identity-key': { type: 'string' },
        'proof-out': { type: 'string' },
        'max-block-age': { type: 'string' },
      },
      ['cert'],
    );
    const maxBlockAgeMs = await maxBlockAgeOf(values['max-block-age']);
    if (values.out === undefined) throw new CliError('--out PREFIX is required (see --help)');
    const out = values.out;
    await checkOutputPrefix(out);
    const proofFile = proofFileOf(out, values['proof-out'], [
      positionals[0],
      values['identity-key'],
    ]);
    await checkOutputPath(
      proofFile,
      values['proof-out'] === undefined ? `--out ${out}` : `--proof-out ${proofFile}`,
    );
    const timeoutMs = timeoutOf(values['timeout-ms']);
    const tools = await import('../cert-tools.js');
    const certificate = await readCertificate(positionals[0] as string);
    const serial = tools.certificateSerialOf(certificate);
    const lifetime =
      values.lifetime === undefined
        ? undefined
        : integerOption(values.lifetime, 'lifetime', { min: 1, max: 398 * 86_400 }, 1);
    const request = await genesisRenewalRequestOf(
      certificate,
      positionals[0] as string,
      values['identity-key'],
    );
    return withCluster(values, async (context) => {
      const { client, genesis, operatorKey } = context;
      const published = await tools.renewCertificate({
        client,
        genesis,
        privateKey: operatorKey,
        serial,
        ...(lifetime === undefined ? {} : { lifetimeSeconds: lifetime }),
        ...(request === undefined ? {} : { request }),
        timeoutMs,
      });
      const files = await writeOutputs(out, published, genesis, client);
      report(io, published, files);
      await writeCertificateProof(
        io,
        context,
        published.certificate,
        proofFile,
        timeoutMs,
        { cert: files.cert, hint: clusterHint(values) },
        maxBlockAgeMs,
      );
      return 0;
    });
  },
};

/**
 * For a genesis bootstrap certificate (no TrustChain issuance extension), the request its
 * renewal carries, built with the keys in `identityKeyFile`; undefined for an issued one.
 */
async function genesisRenewalRequestOf(
  certificate: Uint8Array,
  file: string,
  identityKeyFile: string | undefined,
): Promise<CertificateRequestInput | undefined> {
  if (!lacksIssuanceExtensions(certificate)) {
    if (identityKeyFile !== undefined) {
      throw new CliError(
        `--identity-key is only for a genesis bootstrap certificate; ${file} was issued through consensus and renews from its committed request`,
      );
    }
    return undefined;
  }
  if (identityKeyFile === undefined) {
    throw new CliError(
      `${file} is a genesis bootstrap certificate: its renewal carries a request signed with its keys; pass --identity-key FILE (its node-identity key file)`,
    );
  }
  const { readKeyFile } = await import('../../crypto/keyfile.js');
  const { keys } = await readKeyFile(identityKeyFile, { kind: 'node-identity' }).catch(
    keyFileFailure,
  );
  const { CaModuleError, genesisRenewalRequest } =
    await import('../../trustchain/ca-module/index.js');
  try {
    return await genesisRenewalRequest(certificate, {
      privateKey: keys.ed25519.privateKey,
      falconSecretKey: keys.falcon.secretKey,
    });
  } catch (error) {
    if (error instanceof CaModuleError) {
      throw new CliError(`${identityKeyFile} cannot renew ${file}: ${error.message}`);
    }
    throw error;
  }
}

const revoke: Command = {
  name: 'cert revoke',
  summary: 'revoke a certificate',
  help: `
usage: hypermesh cert revoke CERT [--reason NAME|CODE] [--key FILE] [--cluster FILE|DIR]
                             [--node NAME|ADDR] [--timeout-ms MS]

Submits a "ca" revoke transaction for the certificate in CERT (PEM) from the operator key and
waits for the commit. Without --key the operator must be the account that requested it; with
--key FILE (the certificate's private key, PEM) the revocation carries a signature by that
key, so any account may submit it. Reasons (RFC 5280): unspecified (0, default),
keyCompromise (1), affiliationChanged (3), superseded (4), cessationOfOperation (5),
privilegeWithdrawn (9). keyCompromise with --key also marks the key compromised: the CA revokes
the key's other certificates and refuses the key from then on (docs/ca.md, "Compromised keys");
without --key it revokes this certificate only.
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      { ...clusterOptions, reason: { type: 'string' }, key: { type: 'string' } },
      ['cert'],
    );
    const tools = await import('../cert-tools.js');
    const certificate = await readCertificate(positionals[0] as string);
    const serial = tools.certificateSerialOf(certificate);
    const reason = reasonOf(values.reason);
    let subjectKey: KeyObject | null = null;
    if (values.key !== undefined) {
      const text = await readFile(values.key, 'utf8').catch((error: Error) => {
        throw new CliError(`cannot read ${values.key}: ${error.message}`);
      });
      subjectKey = createPrivateKey(text);
      const { parseCertificate } = await import('../../crypto/x509.js');
      if (!createPublicKey(subjectKey).equals(parseCertificate(certificate).publicKey)) {
        throw new CliError(`${values.key} is not the key of ${positionals[0]}`);
      }
    }
    return withCluster(values, async ({ client, genesis, operatorKey }) => {
      const outcome = await tools.revokeCertificate({
        client,
        genesis,
        privateKey: operatorKey,
        serial,
        reason,
        ...(subjectKey === null
          ? {}
          : { proof: signRevocation(subjectKey, genesis.chainId, serial, reason) }),
        timeoutMs: timeoutOf(values['timeout-ms']),
      });
      io.out(
        `certificate ${Buffer.from(serial).toString('hex')} revoked (${REVOCATION_REASONS[reason]}) at height ${outcome.height} (tx ${outcome.txHash})\n`,
      );
      return 0;
    });
  },
};

const show: Command = {
  name: 'cert show',
  summary: 'print the fields of a certificate, TrustChain extensions included',
  help: `
usage: hypermesh cert show CERT [--json]

Prints the serial, subject, issuer, validity, names, the issuance reference (chain, height,
transaction) and the batch inclusion (leaf index, tree size, root) of the first certificate
in CERT (PEM).
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(args, { json: { type: 'boolean' } }, [
      'cert',
    ]);
    const { describeCertificate } = await import('../cert-tools.js');
    const fields = describeCertificate(await readCertificate(positionals[0] as string));
    if (values.json) {
      io.out(`${JSON.stringify(fields, null, 2)}\n`);
    } else {
      for (const [name, value] of Object.entries(fields)) {
        io.out(`${name.padEnd(12)} ${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
      }
    }
    return 0;
  },
};

const proof: Command = {
  name: 'cert proof',
  summary:
    "fetch a certificate's proof of consensus publication and CT inclusion, for offline checks",
  help: `
usage: hypermesh cert proof CERT [--out FILE] [--cluster FILE|DIR] [--node NAME|ADDR]
                            [--timeout-ms MS] [--max-block-age SECONDS]

Fetches from a node (--node, default the first) the proof that the certificate in CERT (PEM)
was published by consensus and is in the transparency log, and writes it to FILE (default:
CERT with .pem replaced by .proof.json): the log's quorum-signed tree head at the node's
latest committed height (block header, commit with the validators' Ed25519 and FALCON-1024
precommits, state proof of "ca/ct/head"), the state proofs of the certificate's record and
revocation under the same header, and the audit path of its log entry at that tree size
(docs/ca.md, "Offline verification"). The node is not trusted: the proof is verified against
the genesis before it is written. "hypermesh cert verify CERT --proof FILE --genesis G" checks
it with no network. "cert request" and "cert renew" write it already.

The proof says "not revoked as of block H", H the node's latest committed block; it prints H's
time and age, and refuses a block older than --max-block-age SECONDS (default 300, the default
of the nodes' ca.maxBlockAgeSeconds): a node that is behind would hand out a stale proof.

Exit code 1 when the cluster has not published the certificate (or another one with its
serial), when it is revoked, when the node's log has no entry for it, when its latest block is
too old, or when the node's answers do not verify.
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      { ...clusterOptions, out: { type: 'string' }, 'max-block-age': { type: 'string' } },
      ['cert'],
    );
    const file = positionals[0] as string;
    const out = values.out ?? `${file.replace(/\.pem$/, '')}.proof.json`;
    const maxBlockAgeMs = await maxBlockAgeOf(values['max-block-age']);
    if (path.resolve(out) === path.resolve(file)) {
      throw new CliError(`--out ${out}: the certificate proof would overwrite the certificate`);
    }
    await checkOutputPath(out, `--out ${out}`);
    const certificate = await readCertificate(file);
    const timeoutMs = timeoutOf(values['timeout-ms']);
    return withCluster(values, async (context) => {
      await writeCertificateProof(
        io,
        context,
        certificate,
        out,
        timeoutMs,
        undefined,
        maxBlockAgeMs,
      );
      return 0;
    });
  },
};

const verify: Command = {
  name: 'cert verify',
  summary:
    'verify a certificate offline: chain, batch inclusion, FALCON signature, consensus and CT proof',
  help: `
usage: hypermesh cert verify CERT [--bundle FILE] [--proof FILE --genesis FILE]
                              [--cluster FILE|DIR [--node NAME] [--max-block-age SECONDS]]
                              [--purpose serverAuth|clientAuth|any] [--at ISO-TIME]

Runs the offline verifier (docs/ca.md, "Offline verification") on the first certificate in
CERT (PEM) against the trust bundle FILE (ca/trust-bundle.json; default with --genesis: the
genesis's app.ca trust bundle): the X.509 chain to the root, the cluster name constraint, the
issuance reference, the Merkle inclusion of the certificate in its block's batch and the
FALCON-1024 batch signature by the issuing validator's key, which the root FALCON key endorsed.

With --proof FILE (written by "cert request", "cert renew" or "cert proof") and --genesis FILE
(the cluster's genesis.json: the trust bundle holds no validator set), also with no network:
the consensus proof — the commit of the proof's block by more than 2/3 of the genesis
validators' power (Ed25519 and, with requirePq, FALCON-1024) over a header whose state root
opens the certificate's record (this certificate, its publication height and issuer), its
revocation (not revoked as of that block) and the log's tree head — and the certificate's
transparency-log inclusion: its entry (rebuilt from the certificate and the proof's timestamp)
and audit path lead to that tree head's root. Without --proof these two are not checked
offline, and the output says so.

With --cluster, also asks a node (--node, default the first) through the
hypermesh.trustchain.ca.v1 "validate" RPC (docs/ca.md, "RPC"): the same chain check at the
node's time, the committed revocation state, and inclusion in that node's CT log (--at does not
apply there). Its answer holds as of a committed height H, printed with H's time and age; a
block older than --max-block-age SECONDS (default 300) is refused: an answer from before a
revocation would still prove "not revoked". At least one of --bundle, --genesis and --cluster is needed. Exit code 0 when
every check asked for says valid, 1 otherwise (an invalid proof prints its reason and code).

A genesis bootstrap certificate (cluster init's node, ACME and operator certificates) carries no
issuance reference or batch proof: --bundle verifies its chain and says so (exit code 1 unless
--proof or --cluster shows it published at height 1 (genesis), in the CT log, not revoked).
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      {
        bundle: { type: 'string' },
        proof: { type: 'string' },
        genesis: { type: 'string' },
        purpose: { type: 'string' },
        at: { type: 'string' },
        cluster: { type: 'string' },
        node: { type: 'string' },
        'max-block-age': { type: 'string' },
      },
      ['cert'],
    );
    const maxBlockAgeMs = await maxBlockAgeOf(values['max-block-age']);
    if (values['max-block-age'] !== undefined && values.cluster === undefined) {
      throw new CliError("--max-block-age applies to --cluster (the age of the node's answer)");
    }
    if (values.proof !== undefined && values.genesis === undefined) {
      throw new CliError(
        "--proof needs --genesis FILE (the cluster's genesis.json): the trust bundle holds no validator set to check the commit with",
      );
    }
    if (
      values.bundle === undefined &&
      values.genesis === undefined &&
      values.cluster === undefined
    ) {
      throw new CliError(
        '--bundle FILE, --genesis FILE or --cluster FILE|DIR is required (see --help)',
      );
    }
    const purpose = (values.purpose ?? 'any') as 'serverAuth' | 'clientAuth' | 'any';
    if (!['serverAuth', 'clientAuth', 'any'].includes(purpose)) {
      throw new CliError('--purpose must be serverAuth, clientAuth or any');
    }
    const now = values.at === undefined ? new Date() : new Date(values.at);
    if (Number.isNaN(now.getTime())) throw new CliError(`--at ${values.at} is not a time`);
    const certificate = await readCertificate(positionals[0] as string);
    const genesis = values.genesis === undefined ? null : await readGenesisFile(values.genesis);
    const proofText = values.proof === undefined ? null : await readProofFile(values.proof);
    // A genesis bootstrap certificate verifies offline only up to its chain (no batch proof).
    let offlineComplete = true;
    let bundle: TrustBundle | null = null;
    if (values.bundle !== undefined) {
      const bundleText = await readFile(values.bundle, 'utf8').catch((error: Error) => {
        throw new CliError(`cannot read ${values.bundle}: ${error.message}`);
      });
      try {
        bundle = parseTrustBundle(bundleText);
      } catch (error) {
        throw new CliError(`${values.bundle}: ${(error as Error).message}`);
      }
    } else if (genesis !== null) {
      const { genesisTrustBundle } = await import('../cert-tools.js');
      bundle = genesisTrustBundle(genesis);
    }
    if (bundle !== null && genesis !== null && bundle.chainId !== genesis.chainId) {
      io.out(
        `invalid: the trust bundle is of chain ${bundle.chainId}, the genesis of ${genesis.chainId} (wrong_chain)\n`,
      );
      return 1;
    }
    if (bundle !== null) {
      try {
        const verified = verifyIssuedCertificate(certificate, bundle, { now, purpose });
        io.out(
          `valid: issued by ${verified.validator} at height ${verified.reference.height} of ${verified.reference.chainId}, ` +
            `leaf ${verified.inclusion.leafIndex} of ${verified.inclusion.treeSize} in its batch, FALCON batch signature verified\n`,
        );
      } catch (error) {
        if (
          error instanceof CaError &&
          error.detail.reason === 'missing_issuance_reference' &&
          lacksIssuanceExtensions(certificate)
        ) {
          // The verifier got past the chain, validity, purpose and name-constraint checks.
          io.out(
            'genesis bootstrap certificate: chain verified; no batch proof (issued at genesis, ' +
              'outside consensus) — use --proof or --cluster to check the log and revocation\n',
          );
          offlineComplete = false;
        } else if (error instanceof CaError) {
          io.out(`invalid: ${error.message} (${String(error.detail.reason ?? error.code)})\n`);
          return 1;
        } else {
          throw error;
        }
      }
      if (proofText === null) {
        io.out(
          'not checked offline: the consensus proof (the commit of the block that published it) and ' +
            'its transparency-log inclusion — pass --proof FILE --genesis FILE' +
            (values.cluster === undefined ? '' : ' (--cluster asks a node below)') +
            '\n',
        );
      }
    }
    if (proofText !== null && genesis !== null) {
      const { CertificateProofError, parseCertificateProof, verifyCertificateProof } =
        await import('../../trustchain/ca-module/certificate-proof.js');
      const { describeCertificateProof } = await import('../cert-proof.js');
      const { defaultFalcon } = await import('../../crypto/falcon.js');
      try {
        const verified = verifyCertificateProof(
          certificate,
          parseCertificateProof(proofText),
          genesis,
          defaultFalcon(),
        );
        for (const line of describeCertificateProof(verified, now.getTime())) {
          io.out(`valid: ${line}\n`);
        }
        offlineComplete = true;
      } catch (error) {
        if (error instanceof CertificateProofError) {
          io.out(`invalid: proof ${values.proof}: ${error.message} [${error.code}]\n`);
          return 1;
        }
        throw error;
      }
    }
    if (values.cluster !== undefined) {
      const { validateOnCluster } = await import('../cert-tools.js');
      const answer = await validateOnCluster(
        values.cluster,
        values.node,
        certificate,
        purpose,
        maxBlockAgeMs,
      );
      io.out(`${answer.line}\n`);
      return answer.valid ? 0 : 1;
    }
    return offlineComplete ? 0 : 1;
  },
};

/** The proof file's text, refused before reading when larger than any valid proof. */
async function readProofFile(file: string): Promise<string> {
  const { MAX_CERTIFICATE_PROOF_BYTES } =
    await import('../../trustchain/ca-module/certificate-proof.js');
  const info = await stat(file).catch((error: Error) => {
    throw new CliError(`cannot read ${file}: ${error.message}`);
  });
  if (!info.isFile()) throw new CliError(`${file} is not a file`);
  if (info.size > MAX_CERTIFICATE_PROOF_BYTES) {
    throw new CliError(
      `${file} is larger than ${MAX_CERTIFICATE_PROOF_BYTES} bytes: not a certificate proof`,
    );
  }
  return readFile(file, 'utf8').catch((error: Error) => {
    throw new CliError(`cannot read ${file}: ${error.message}`);
  });
}

async function genesisFor(values: { genesis?: string; cluster?: string }) {
  if (values.genesis !== undefined) return readGenesisFile(values.genesis);
  const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
  return readGenesisFile(target.genesisFile);
}

const ctSth: Command = {
  name: 'ct sth',
  summary: "print the CT log's quorum-signed tree head, or a node's RFC 6962 signed tree head",
  help: `
usage: hypermesh ct sth [--cluster FILE|DIR] [--node NAME|ADDR] [--out FILE]
       hypermesh ct sth --url URL [--timeout-ms MS]

Without --url: asks a node (--node, default the first) for the log's consensus tree head at its
latest committed height — the proven "ca/tree-head" state, that block's header and its commit
(the validators' Ed25519 and FALCON-1024 precommits) — verifies it against the cluster's
genesis (docs/ct.md, "Quorum-signed tree head"), prints it and, with --out, writes the
checkpoint as JSON for "hypermesh ct verify".

With --url: fetches URL/ct/v1/get-sth (one node's RFC 6962 tree head; the "ct" address of its
ready line or cluster.json), checks its shape and prints it. Its tree_head_signature is NOT
verified: each node signs with its own log key, which neither the genesis nor the cluster files
publish, so nothing the CLI trusts can check it. Use the command without --url for a verified
tree head. Exit code 1 when the node does not answer, answers an error or a malformed body.
`,
  async run(args, io) {
    const { values } = parseWithPositionals(
      args,
      { ...clusterOptions, url: { type: 'string' }, out: { type: 'string' } },
      [],
    );
    if (values.url !== undefined) {
      const tools = await import('../cert-tools.js');
      const sth = await tools.fetchSignedTreeHead(values.url, timeoutOf(values['timeout-ms']));
      io.out(`${JSON.stringify(sth, null, 2)}\n`);
      return 0;
    }
    if (values.out !== undefined) await checkOutputPath(values.out, `--out ${values.out}`);
    const tools = await import('../cert-tools.js');
    const { quorumCheckpointToJson } = await import('../../trustchain/ca-module/index.js');
    return withCluster(values, async ({ client, genesis }) => {
      const { checkpoint, verified } = await tools.fetchQuorumCheckpoint(client, genesis);
      for (const line of tools.describeQuorumCheckpoint(verified)) io.out(`${line}\n`);
      if (values.out !== undefined) {
        await writeFileAtomically(values.out, quorumCheckpointToJson(checkpoint));
        io.out(`  wrote ${values.out}\n`);
      }
      return 0;
    });
  },
};

const ctVerify: Command = {
  name: 'ct verify',
  summary: "verify a quorum-signed CT checkpoint offline; compare a node's log with it",
  help: `
usage: hypermesh ct verify CHECKPOINT [--genesis FILE | --cluster FILE|DIR] [--url URL ...]

Verifies CHECKPOINT (written by "hypermesh ct sth --out") with the genesis document alone:
the commit certifies the block header (more than 2/3 of the genesis validators' power,
Ed25519 and, with requirePq, FALCON-1024), the state proof opens "ca/ct/head" under the
header's state root, and the tree size, root and times it states are the proven ones. The
genesis is --genesis FILE, or the one of --cluster (default ${DEFAULT_CLUSTER_FILE}).

With --url (repeatable, a node's CT address): fetches that node's signed checkpoint
(URL/checkpoint, signed with the node's validator key) and compares. The same size with another
root is a split view: both signed heads are printed. A larger served log must come with a
consistency proof from the quorum's head.

Exit code 0 when the checkpoint verifies and every node agrees; 1 otherwise (invalid
checkpoint, split view, inconsistent or not comparable because a node is behind).
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      {
        genesis: { type: 'string' },
        cluster: { type: 'string' },
        url: { type: 'string', multiple: true },
      },
      ['checkpoint'],
    );
    const file = positionals[0] as string;
    const text = await readFile(file, 'utf8').catch((error: Error) => {
      throw new CliError(`cannot read ${file}: ${error.message}`);
    });
    const genesis = await genesisFor(values);
    const { QuorumCheckpointError, parseQuorumCheckpoint, verifyQuorumCheckpoint } =
      await import('../../trustchain/ca-module/index.js');
    const { defaultFalcon } = await import('../../crypto/falcon.js');
    const tools = await import('../cert-tools.js');
    let verified;
    try {
      const { checkpoint, claims } = parseQuorumCheckpoint(text);
      verified = verifyQuorumCheckpoint(checkpoint, genesis, defaultFalcon(), claims);
    } catch (error) {
      if (error instanceof QuorumCheckpointError) {
        io.out(`invalid: ${file}: ${error.message} [${error.code}]\n`);
        return 1;
      }
      throw error;
    }
    io.out('valid: ');
    for (const line of tools.describeQuorumCheckpoint(verified)) io.out(`${line}\n`);
    let agreed = true;
    for (const url of values.url ?? []) {
      const check = await tools.checkServedLog(url, verified, genesis);
      for (const line of check.lines) io.out(`${line}\n`);
      if (check.outcome !== 'same' && check.outcome !== 'consistent') agreed = false;
    }
    return agreed ? 0 : 1;
  },
};

const ctProof: Command = {
  name: 'ct proof',
  summary: "check a certificate's inclusion in a node's CT log",
  help: `
usage: hypermesh ct proof CERT --url URL [--cluster FILE|DIR] [--node NAME|ADDR]
                        [--timeout-ms MS]

Finds when the certificate in CERT was published (a "ca" query to a node, its state proof
checked against the state root of a header the validator quorum committed), rebuilds its log
entry, and fetches the log's quorum-signed tree head from that node (as "hypermesh ct sth"
does: the proven "ca/tree-head" state and the commit of its block, verified against the
genesis). It then asks the log at URL for the audit path at exactly that tree size
(get-proof-by-hash with tree_size = the head's size) and verifies it against the head's root
(RFC 9162 §2.1.3.2). The log's own get-sth is used only to see whether it has reached that
size (its signature cannot be verified: each node's log key is published nowhere the CLI
trusts); a log serving any other tree — even a self-consistent one holding the certificate —
fails the check.

Exit code 0 when the proof verifies; 1 when it does not, when the log at URL is behind the
quorum tree head (retry), has no such entry, or answers a malformed body (the message names
the URL and the field).
`,
  async run(args, io) {
    const { values, positionals } = parseWithPositionals(
      args,
      { ...clusterOptions, url: { type: 'string' } },
      ['cert'],
    );
    if (values.url === undefined) throw new CliError('--url URL is required (see --help)');
    const url = values.url.replace(/\/$/, '');
    const tools = await import('../cert-tools.js');
    const certificate = await readCertificate(positionals[0] as string);
    const serial = tools.certificateSerialOf(certificate);
    return withCluster(values, async ({ client, genesis }) => {
      const { CaStateReader, caQuery } = await import('../../trustchain/ca-module/index.js');
      const { certificateKey } = await import('../../trustchain/ca-module/state.js');
      // Proven to a root the validator quorum committed (a node could root any record itself).
      const { value, height } = await tools.readCommittedCaValue(
        client,
        caQuery('certificate', serial),
        certificateKey(serial),
      );
      const record =
        value === null ? null : new CaStateReader({ get: () => value }).certificate(serial);
      if (record === null) throw new CliError('the cluster has published no such certificate', 1);
      if (Buffer.compare(Buffer.from(record.der), Buffer.from(certificate)) !== 0) {
        throw new CliError(
          `${positionals[0]} differs from the certificate the cluster published with its serial`,
          1,
        );
      }
      const timestamp = await tools.ctTimestamp(client, record.publishedAt, height ?? undefined);
      const { verified } = await tools.fetchQuorumCheckpoint(client, genesis);
      if (verified.height < record.publishedAt) {
        throw new CliError(
          `the quorum tree head (block ${verified.height}) predates the certificate's publication at height ${record.publishedAt}; retry`,
          1,
        );
      }
      const inclusion = await tools.checkCtInclusion(url, record.der, timestamp, verified, {
        timeoutMs: timeoutOf(values['timeout-ms']),
      });
      io.out(
        `included: leaf ${inclusion.leafIndex} of tree size ${inclusion.treeSize}, root ${inclusion.rootHash} (${url}), ` +
          `the quorum-signed tree head of block ${verified.height}\n`,
      );
      return 0;
    });
  },
};

export const certCommands: readonly Command[] = [
  request,
  renew,
  revoke,
  show,
  proof,
  verify,
  ctSth,
  ctVerify,
  ctProof,
];
