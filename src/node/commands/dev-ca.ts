import path from 'node:path';
import type { Command } from '../commands.js';
import { parseCommandArgs, passphraseFromEnv, positiveInteger, requireOption } from '../args.js';
import { CliError } from '../cli-error.js';
import { initDevCa, issueDevIdentity, loadDevCa } from '../dev-ca.js';
import type { CertificateRole } from '../../crypto/x509.js';

const ROLES: readonly CertificateRole[] = ['validator', 'node', 'client'];

/**
 * Longest certificate lifetime the commands accept: 100 years, far inside what X.509 can
 * encode (GeneralizedTime ends at 9999, RFC 5280 §4.1.2.5).
 */
export const MAX_VALIDITY_DAYS = 36_500;

const init: Command = {
  name: 'dev-ca init',
  summary: 'create a local development CA (root certificate and key) for tests and demos',
  help: `
usage: hypermesh dev-ca init --dir DIR --cluster NAME [--validity-days N] [--passphrase-env VAR]

Creates DIR/root.pem (certificate), DIR/root.key (ECDSA P-256 key, mode 0600) and
DIR/cluster.txt. The development CA stands in for the TrustChain CA until that exists; do not use
it for anything but tests and demos. Refuses to overwrite an existing CA.

options:
  --dir DIR             where to write the CA (created if missing)
  --cluster NAME        cluster name, used in node identities spiffe://NAME/<role>/<name>
  --validity-days N     root certificate lifetime, 1 to ${MAX_VALIDITY_DAYS} (default 3650)
  --passphrase-env VAR  encrypt root.key with the passphrase in environment variable VAR
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      dir: { type: 'string' },
      cluster: { type: 'string' },
      'validity-days': { type: 'string' },
      'passphrase-env': { type: 'string' },
    });
    const dir = path.resolve(requireOption(values.dir, 'dir'));
    const cluster = requireOption(values.cluster, 'cluster');
    const validityDays = positiveInteger(
      values['validity-days'],
      'validity-days',
      3650,
      MAX_VALIDITY_DAYS,
    );
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const paths = await initDevCa({
      dir,
      cluster,
      validityDays,
      ...(passphrase === undefined ? {} : { passphrase }),
    });
    io.out(`created development CA for cluster "${cluster}":\n`);
    io.out(`  certificate ${paths.certificate}\n  key         ${paths.key}\n`);
    return 0;
  },
};

const issue: Command = {
  name: 'dev-ca issue',
  summary: 'issue a node identity (Ed25519 + FALCON-1024 keys and certificate) from the dev CA',
  help: `
usage: hypermesh dev-ca issue --dir DIR --name NAME [--role validator|node|client]
                              [--out DIR] [--validity-days N] [--passphrase-env VAR]
                              [--ca-passphrase-env VAR]

Generates a node identity — an Ed25519 transport key and a FALCON-1024 key pair — and a
certificate from the development CA in --dir naming spiffe://<cluster>/<role>/<name> and carrying
the FALCON public key. Writes OUT/<name>.key (mode 0600) and OUT/<name>.pem (certificate chain).

options:
  --dir DIR                the development CA directory (from "dev-ca init")
  --name NAME              node name (lowercase letters, digits, "-")
  --role ROLE              validator, node (default) or client: what RPC methods it may call
  --out DIR                output directory (default: the CA directory)
  --validity-days N        certificate lifetime, 1 to ${MAX_VALIDITY_DAYS} (default 30)
  --passphrase-env VAR     encrypt the node key with the passphrase in VAR
  --ca-passphrase-env VAR  passphrase of an encrypted root.key
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      dir: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      out: { type: 'string' },
      'validity-days': { type: 'string' },
      'passphrase-env': { type: 'string' },
      'ca-passphrase-env': { type: 'string' },
    });
    const dir = path.resolve(requireOption(values.dir, 'dir'));
    const name = requireOption(values.name, 'name');
    const role = (values.role ?? 'node') as CertificateRole;
    if (!ROLES.includes(role)) {
      throw new CliError(`--role must be one of ${ROLES.join(', ')}, got "${values.role}"`);
    }
    const validityDays = positiveInteger(
      values['validity-days'],
      'validity-days',
      30,
      MAX_VALIDITY_DAYS,
    );
    const { ca, cluster } = await loadDevCa(dir, passphraseFromEnv(values['ca-passphrase-env']));
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const paths = await issueDevIdentity({
      ca,
      cluster,
      name,
      role,
      outDir: path.resolve(values.out ?? dir),
      validityDays,
      ...(passphrase === undefined ? {} : { passphrase }),
    });
    io.out(`issued spiffe://${cluster}/${role}/${name}:\n`);
    io.out(`  key         ${paths.keyFile}\n  certificate ${paths.certificateFile}\n`);
    return 0;
  },
};

export const devCaCommands: readonly Command[] = [init, issue];
