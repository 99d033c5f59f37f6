import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { KeyFileErrorCode, readKeyFile } from '../../src/crypto/keyfile.js';
import {
  issueNodeIntermediate,
  rootPassphrase,
  writeIntermediateRequest,
} from '../../src/node/ca-intermediate.js';
import { genesisTrustBundle } from '../../src/node/cert-tools.js';
import { CliError } from '../../src/node/cli-error.js';
import { initCluster } from '../../src/node/cluster-init.js';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import type { TrustBundle } from '../../src/trustchain/ca/bundle.js';

/**
 * The root key files and the generated passphrase file get a key file's checks when
 * `ca intermediate issue` reads them (docs/crypto.md, "Key files"): a copy readable by group or
 * others (restored from an archive, say) is refused, not used.
 */

let root: string;
let clusterDir: string;
let bundle: TrustBundle;
const operatorFile = (name: string): string => path.join(clusterDir, 'operator', name);

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-ca-root-files-'));
  clusterDir = path.join(root, 'cluster');
  const layout = await initCluster({
    out: clusterDir,
    validators: 1,
    basePort: 0,
    metricsBasePort: 0,
    dns: false,
    discovery: false,
    acme: false,
  });
  bundle = genesisTrustBundle(await readGenesisFile(layout.genesisFile));
  // node-1 asks again for an intermediate (as `cluster add-node` does for a new node), so the
  // issuing step gets past the request checks to the root key files.
  const node = layout.nodes[0];
  assert.ok(node !== undefined);
  const identity = await readKeyFile(path.join(node.dir, 'node-1.key'), { kind: 'node-identity' });
  await unlink(path.join(node.dir, 'ca-intermediate.key'));
  await writeIntermediateRequest({
    nodeDir: node.dir,
    name: 'node-1',
    account: ed25519RawPublicKey(identity.keys.ed25519.publicKey),
    falconKeys: identity.keys.falcon,
  });
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function issue(passphrase: string): Promise<unknown> {
  return issueNodeIntermediate({ clusterDir, node: 'node-1', bundle, passphrase, now: new Date() });
}

function insecure(file: string): (error: unknown) => boolean {
  return (error: unknown) =>
    error instanceof CliError &&
    error.message.includes(KeyFileErrorCode.INSECURE_PERMISSIONS) &&
    error.message.includes(file);
}

describe('ca intermediate issue: the root key files', () => {
  for (const file of ['ca-root-ecdsa.key', 'ca-root-falcon.key']) {
    it(`refuses ${file} readable by group or others, and uses it once it is 0600`, async () => {
      const passphrase = await rootPassphrase(clusterDir, undefined);
      await chmod(operatorFile(file), 0o644);
      try {
        await assert.rejects(issue(passphrase), insecure(file));
      } finally {
        await chmod(operatorFile(file), 0o600);
      }
      const issued = await issue(passphrase);
      assert.ok(typeof issued === 'object' && issued !== null && 'certificate' in issued);
    });
  }
});

describe('ca intermediate issue: the generated passphrase file', () => {
  it('refuses it readable by group or others, and reads it once it is 0600', async () => {
    const file = operatorFile('ca-root-passphrase.txt');
    await chmod(file, 0o640);
    try {
      await assert.rejects(rootPassphrase(clusterDir, undefined), insecure(file));
    } finally {
      await chmod(file, 0o600);
    }
    assert.equal(
      await rootPassphrase(clusterDir, undefined),
      (await readFile(file, 'utf8')).trim(),
    );
  });

  it('--passphrase-env does not read the file at all', async () => {
    await chmod(operatorFile('ca-root-passphrase.txt'), 0o644);
    try {
      assert.equal(
        await rootPassphrase(clusterDir, 'HM_ROOT_PASS', { HM_ROOT_PASS: 'from the environment' }),
        'from the environment',
      );
    } finally {
      await chmod(operatorFile('ca-root-passphrase.txt'), 0o600);
    }
  });
});
