import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { consensusAddress, ed25519Address, formatAddress } from '../../src/caesar/index.js';
import { SEQUENCE_QUERY, decodeSequence } from '../../src/consensus/application/index.js';
import { decodeBlock, decodeQuorumCertificate } from '../../src/consensus/wire.js';
import { certificateIdentity, parseCertificate, pemToDerList } from '../../src/crypto/x509.js';
import { parseTrustBundle } from '../../src/trustchain/ca/bundle.js';
import { verifyIssuedCertificate } from '../../src/trustchain/ca/verify.js';
import { readClusterLayout } from '../../src/node/cluster-layout.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { spawnValidator, type ValidatorProcess } from '../../src/node/node-process.js';
import {
  loadClusterTarget,
  openOperatorSession,
  type OperatorSession,
} from '../../src/node/operator.js';
import { readWalletKey } from '../../src/node/wallet.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { killValidators } from '../helpers/nodes.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * Issue 6 §4, multi-process (needs `npm run build`: the nodes are `hypermesh node start` child
 * processes from the built bin). Four genesis validators of a staking chain (`epochBlocks=5`, no
 * block reward, so stakes change only by bonding and slashing):
 *
 * 1. `cluster add-node` writes node-5, its STOQ certificate issued by the running cluster through
 *    consensus (a `node`-profile `ca` request signed with the operator key, published by a
 *    validator's intermediate: openssl and the offline verifier accept it against the TrustChain
 *    root, and a node's `validate` RPC knows it); started, it syncs and follows although no node
 *    lists it; the operator tools find it in the directory and `status --json` shows it as a
 *    follower.
 * 2. Funded, its `stake create-validator` is refused (`CAESAR_VALIDATOR_NO_INTERMEDIATE`, its
 *    sequence unchanged): a new validator needs a TrustChain intermediate first. It gets one
 *    through the governed procedure (`ca intermediate issue`, approvals by 3 of the 4 genesis
 *    holders), `ca intermediate list` shows it active, node-5 takes it up without a restart.
 * 3. Registered with `stake create-validator` (power 40 of 80), it joins the set at the next
 *    epoch and its precommits appear in commits (node API getBlock, `block verify`);
 *    `status --json` now shows it as a validator.
 * 4. With node-4 stopped, 30 of the genesis power is left: every commit now needs node-5's 40.
 * 5. node-4 restarted as a test-build equivocator (HYPERMESH_TEST_EQUIVOCATE=prevote with
 *    HYPERMESH_TEST_BUILD=1): the others turn its two prevotes into evidence, a block includes
 *    it, Caesar burns 5% of its stake and jails it (proven `stake validators --json`), the set
 *    drops it two heights later, and the cluster keeps committing without it.
 * 6. node-5, now proposing most blocks, publishes a certificate with its added intermediate in
 *    its turn.
 *
 * Every wait is re-checked on a node's log line (commit, membership) or exit, with a deadline.
 */
const SUITE_MS = 300_000;
const START_MS = 60_000;
const STEP_MS = 90_000;
/** The slash's block is committed everywhere by then: its metrics need no longer. */
const SCRAPE_MS = 20_000;
const PUBLISH_WINDOW_BLOCKS = 40;
const SELF_BOND = 40;
const GENESIS_STAKE = 10_000_000n;
const SLASH_BPS = 500n;

/** Every log line of every node announces itself here; waits re-check on it. */
const activity = new EventEmitter();
activity.setMaxListeners(0);
const LINE = 'line';

let dir: string;
let clusterDir: string;
const nodes = new Map<string, ValidatorProcess>();
const logs = new Map<string, Record<string, unknown>[]>();
let session: OperatorSession | undefined;

function start(name: string, configFile: string, env: NodeJS.ProcessEnv = process.env) {
  const node = spawnValidator(name, configFile, {
    logFile: path.join(dir, `${name}.log`),
    env,
  });
  const lines: Record<string, unknown>[] = [];
  logs.set(name, lines);
  node.onLog((entry) => {
    lines.push(entry);
    activity.emit(LINE);
  });
  void node.exited.then(() => activity.emit(LINE));
  nodes.set(name, node);
  return node;
}

function running(name: string): boolean {
  const node = nodes.get(name);
  return node !== undefined && node.child.exitCode === null && node.child.signalCode === null;
}

/** Resolves once `check` holds, re-checking on every log line; fails with `what` after `ms`. */
function until(check: () => boolean | Promise<boolean>, what: () => string, ms = STEP_MS) {
  return waitForCondition(activity, LINE, check, what, ms);
}

function logged(name: string, message: string): Record<string, unknown>[] {
  return (logs.get(name) ?? []).filter((entry) => entry.msg === message);
}

function height(name: string): number {
  return nodes.get(name)?.committedHeight() ?? 0;
}

/** The validator addresses whose precommits are in the commit of `h` (from node-1's API). */
async function commitSigners(h: number): Promise<Set<string>> {
  const block = await (session as OperatorSession).client('node-1').getBlock(h);
  return new Set(decodeQuorumCertificate(block.commit).precommits.map((vote) => vote.validator));
}

async function stakeValidators(): Promise<{
  height: number;
  validators: { address: string; tokens: string; power: number; inSet: boolean; jailed: string }[];
}> {
  const result = await runCli(['stake', 'validators', '--json', '--cluster', clusterDir]);
  assert.equal(result.code, 0, result.err);
  return JSON.parse(result.out) as Awaited<ReturnType<typeof stakeValidators>>;
}

/** `stake create-validator` for node-5 (self-bond SELF_BOND, no commission), `--wait`. */
function createValidator(): ReturnType<typeof runCli> {
  return runCli([
    'stake',
    'create-validator',
    '--node-dir',
    path.join(clusterDir, 'node-5'),
    '--self-bond',
    String(SELF_BOND),
    '--commission',
    '0',
    '--cluster',
    clusterDir,
    '--wait',
  ]);
}

/** The next sequence number node-1's committed state expects from `publicKey`. */
async function sequenceOf(publicKey: Uint8Array): Promise<number> {
  const answer = await (session as OperatorSession)
    .client('node-1')
    .query({ path: SEQUENCE_QUERY, data: publicKey });
  return decodeSequence(answer.value);
}

/**
 * node-5's certificate came from the TrustChain CA through consensus: leaf + the issuing
 * validator's intermediate (one of ca/trust-bundle.json), chaining to ca/trustchain-root.pem
 * (openssl and the offline verifier, whose issuance reference names the commit height), and
 * known to the cluster (`cert verify --cluster`: published, not revoked).
 */
async function checkNode5Certificate(
  config: Awaited<ReturnType<typeof loadValidatorNodeConfig>>,
  issued: { committedAt: number; serial: string; issuer: string },
): Promise<void> {
  const caDir = path.join(clusterDir, 'ca');
  assert.equal(config.trust.rootsFile, path.join(caDir, 'trustchain-root.pem'));
  const chain = pemToDerList(await readFile(config.identity.certificateFile, 'utf8'));
  assert.equal(chain.length, 2);
  const [leaf, intermediate] = chain as [Uint8Array, Uint8Array];
  assert.equal(parseCertificate(leaf).serialNumber, issued.serial);
  assert.equal(certificateIdentity(leaf).uri, 'spiffe://staking-it/node/node-5');
  const bundle = parseTrustBundle(await readFile(path.join(caDir, 'trust-bundle.json'), 'utf8'));
  const validator = bundle.validators.find((entry) => entry.name === issued.issuer);
  assert.ok(validator !== undefined, `${issued.issuer} is in the trust bundle`);
  assert.deepEqual(intermediate, validator.certificate);
  assert.equal(parseCertificate(leaf).issuer, validator.parsed.subject);
  const verified = verifyIssuedCertificate(leaf, bundle);
  assert.equal(verified.validator, issued.issuer);
  assert.equal(verified.reference.height, issued.committedAt);
  const opensslVerify = spawnSync(
    'openssl',
    [
      'verify',
      '-CAfile',
      path.join(caDir, 'trustchain-root.pem'),
      '-untrusted',
      config.identity.certificateFile,
      // The listen address (within the operator's grant) is an IP SAN, for DoQ clients.
      '-verify_ip',
      config.stoq.host,
      config.identity.certificateFile,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(opensslVerify.status, 0, `${opensslVerify.stdout}${opensslVerify.stderr}`);
  const known = await runCli([
    'cert',
    'verify',
    config.identity.certificateFile,
    '--bundle',
    path.join(caDir, 'trust-bundle.json'),
    '--cluster',
    clusterDir,
  ]);
  assert.equal(known.code, 0, known.out + known.err);
  assert.match(known.out, /: valid: not revoked, published at height \d+/);
}

/** `hypermesh_caesar_slashing_events_total` in one scrape of a node's metrics endpoint. */
async function slashingEvents(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const series = 'hypermesh_caesar_slashing_events_total ';
  const line = text.split('\n').find((entry) => entry.startsWith(series));
  assert.ok(line !== undefined, `${series.trim()} in ${metricsUrl}`);
  return Number(line.slice(series.length));
}

/** `hypermesh status --json` of the cluster directory. */
async function clusterStatus(): Promise<{
  validatorSet: { from: string };
  validators: { name: string; id: string; power: number }[];
  totalPower: number;
  nodes: { name: string; id: string; role: string; power: number; reachable: boolean }[];
}> {
  const result = await runCli(['status', '--json', '--cluster', clusterDir]);
  assert.equal(result.code, 0, result.err);
  return JSON.parse(result.out) as Awaited<ReturnType<typeof clusterStatus>>;
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-staking-cluster-'));
  clusterDir = path.join(dir, 'cluster');
  const init = await runCli([
    ...clusterInitArgs(clusterDir, 4),
    '--chain-id',
    'staking-it',
    '--no-dns',
    '--no-discovery',
    '--staking',
    '--staking-param',
    'epochBlocks=5',
    '--staking-param',
    'blockReward=0',
    '--staking-param',
    'maxMissed=99',
  ]);
  assert.equal(init.code, 0, init.err);
  // The issuer rotation's first issuer for a block (its proposer) publishes alone for
  // `publishWindowBlocks`; a long window makes "who publishes" depend on the rotation only, not
  // on how quickly a loaded machine lets the proposer sign (the last step checks node-5's turn).
  const genesisFile = path.join(clusterDir, 'genesis.json');
  const genesis = JSON.parse(await readFile(genesisFile, 'utf8')) as {
    app: { ca: Record<string, unknown> };
  };
  genesis.app.ca['publishWindowBlocks'] = PUBLISH_WINDOW_BLOCKS;
  await writeFile(genesisFile, `${JSON.stringify(genesis, null, 2)}\n`);
  const layout = await readClusterLayout(clusterDir);
  for (const node of layout.nodes) start(node.name, node.configFile);
  await Promise.all([...nodes.values()].map((node) => node.ready));
  const genesisOnly = await loadClusterTarget(clusterDir);
  assert.equal(genesisOnly.nodes.length, 4);
});

after(async () => {
  await session?.close().catch(() => undefined);
  await killValidators(nodes.values());
  if (process.env.HM_IT_KEEP === undefined) await rm(dir, { recursive: true, force: true });
  else process.stderr.write(`kept ${dir}\n`);
});

describe(
  'a staking cluster gains a validator and loses an equivocating one',
  { timeout: SUITE_MS },
  () => {
    let node5Address = '';
    let node4Address = '';

    it('adds node-5 with cluster add-node; it syncs and follows without being listed', async () => {
      await until(
        () => ['node-1', 'node-2', 'node-3', 'node-4'].every((name) => height(name) >= 2),
        () =>
          `the genesis validators to commit height 2 (${[...nodes.keys()].map((n) => `${n}@${height(n)}`).join(' ')})`,
        START_MS,
      );
      const added = await runCli([
        'cluster',
        'add-node',
        '--cluster',
        clusterDir,
        '--name',
        'node-5',
      ]);
      assert.equal(added.code, 0, added.err);
      assert.match(
        added.out,
        /requesting a node certificate for spiffe:\/\/staking-it\/node\/node-5 from the TrustChain CA through node-\d \(lifetime 30 days\)/,
      );
      const committedAt = Number(/committed at height (\d+)/.exec(added.out)?.[1]);
      const serial = /certificate serial ([0-9a-f]+)/.exec(added.out)?.[1];
      const issuer = /published at height \d+ by (node-[1-4])/.exec(added.out)?.[1];
      assert.ok(committedAt > 0 && serial !== undefined && issuer !== undefined, added.out);
      assert.match(
        added.out,
        /node-5 +[0-9a-f]{40} +keys, certificate \(role node\) from the TrustChain CA \(serial [0-9a-f]+\)/,
      );
      assert.match(added.out, /peers +node-1, node-2, node-3, node-4/);
      const configFile = path.join(clusterDir, 'node-5', 'config.json');
      const config = await loadValidatorNodeConfig(configFile, {});
      await checkNode5Certificate(config, { committedAt, serial, issuer });
      const key = await readWalletKey(config.identity.keyFile);
      node5Address = formatAddress(Buffer.from(consensusAddress(key.publicKey)));
      const genesisKey = await readWalletKey(path.join(clusterDir, 'node-4', 'node-4.key'));
      node4Address = formatAddress(Buffer.from(consensusAddress(genesisKey.publicKey)));
      // add-node recorded node-5 in the directory: the operator tools reach it too.
      const target = await loadClusterTarget(clusterDir);
      assert.deepEqual(
        target.nodes.map((node) => [node.name, node.id]),
        [
          ...['node-1', 'node-2', 'node-3', 'node-4'].map((name, i) => [name, target.nodes[i]?.id]),
          ['node-5', node5Address],
        ],
      );
      assert.deepEqual(target.nodes[4]?.stoq, { host: config.stoq.host, port: config.stoq.port });
      session = await openOperatorSession(target);

      const node5 = start('node-5', configFile);
      await node5.ready;
      const goal = height('node-1') + 2;
      await until(
        () => height('node-5') >= goal,
        () => `node-5 to follow to height ${goal} (at ${height('node-5')})`,
      );
      assert.equal(
        logged(
          'node-5',
          'not a genesis validator: following the chain until the validator set holds this key',
        ).length,
        1,
      );
      const status = await session.client('node-5').status();
      assert.ok((status.committedHeight as number) >= goal);
      assert.deepEqual([...(status.peersConnected as string[])].sort(), [
        'node-1',
        'node-2',
        'node-3',
        'node-4',
      ]);
      // hypermesh status lists node-5, answering, as a follower outside the chain's set.
      const report = await clusterStatus();
      assert.equal(report.validatorSet.from, 'chain');
      assert.deepEqual(
        report.nodes.map((node) => [node.name, node.role, node.reachable]),
        [
          ['node-1', 'validator', true],
          ['node-2', 'validator', true],
          ['node-3', 'validator', true],
          ['node-4', 'validator', true],
          ['node-5', 'follower', true],
        ],
      );
      assert.equal(report.nodes[4]?.id, node5Address);
      assert.equal(report.validators.length, 4);
    });

    it('refuses to register node-5 before it holds an intermediate, which it then gets through the governed procedure', async () => {
      const key = await readWalletKey(path.join(clusterDir, 'node-5', 'node-5.key'));
      const funded = await runCli([
        'wallet',
        'send',
        '--to',
        formatAddress(ed25519Address(key.publicKey)),
        '--amount',
        String(SELF_BOND + 10),
        '--key',
        path.join(clusterDir, 'operator', 'treasury.key'),
        '--cluster',
        clusterDir,
        '--wait',
      ]);
      assert.equal(funded.code, 0, funded.err);
      // No intermediate yet: refused at admission with its code, nothing submitted.
      const sequence = await sequenceOf(key.publicKey);
      const refused = await createValidator();
      assert.equal(refused.code, 1, refused.out + refused.err);
      assert.match(
        refused.err,
        /node-\d refused the validator: CAESAR_VALIDATOR_NO_INTERMEDIATE: create-validator: key [0-9a-f]{64} holds no TrustChain intermediate in effect/,
      );
      const issued = await runCli([
        'ca',
        'intermediate',
        'issue',
        '--cluster',
        clusterDir,
        '--node',
        'node-5',
        '--json',
      ]);
      assert.equal(issued.code, 0, issued.err);
      const { hash } = JSON.parse(issued.out) as { hash: string };
      assert.match(hash, /^[0-9a-f]{64}$/);
      // 4 genesis holders: more than 2/3 is 3 approvals.
      for (const [holder, active] of [
        ['node-1', null],
        ['node-2', null],
        ['node-3', 'node-5'],
      ] as const) {
        const approved = await runCli([
          'ca',
          'intermediate',
          'approve',
          '--cluster',
          clusterDir,
          '--node',
          holder,
          '--hash',
          hash,
          '--json',
        ]);
        assert.equal(approved.code, 0, approved.err);
        assert.equal((JSON.parse(approved.out) as { active: string | null }).active, active);
      }
      const listed = await runCli([
        'ca',
        'intermediate',
        'list',
        '--cluster',
        clusterDir,
        '--json',
      ]);
      assert.equal(listed.code, 0, listed.err);
      const listing = JSON.parse(listed.out) as {
        holders: number;
        entries: { name: string; status: string; approvals: string[] }[];
      };
      assert.equal(listing.holders, 5);
      const node5 = listing.entries.find((entry) => entry.name === 'node-5');
      assert.equal(node5?.status, 'active');
      assert.deepEqual(node5?.approvals, ['node-1', 'node-2', 'node-3']);
      await until(
        () => logged('node-5', 'ca intermediate in effect: publishing').length > 0,
        () => `node-5 to take up its intermediate (at ${height('node-5')})`,
      );
      // The refused registration never reached a block: the sequence is where it was.
      assert.equal(await sequenceOf(key.publicKey), sequence);
    });

    it('registers node-5; it joins the set at the next epoch and signs commits', async () => {
      const created = await createValidator();
      assert.equal(created.code, 0, created.err);
      const registeredAt = Number(/committed at height (\d+), code 0/.exec(created.out)?.[1]);
      assert.ok(registeredAt > 0, created.out);
      // Selected at the end of the first epoch block at or after it, in the set two heights later.
      const epoch = Math.ceil(registeredAt / 5) * 5;
      const joinsAt = epoch + 2;

      await until(
        () => logged('node-5', 'this node is in the validator set').length > 0,
        () =>
          `node-5 to see itself in the validator set (at ${height('node-5')}, joins at ${joinsAt})`,
      );
      let signedAt = 0;
      await until(
        async () => {
          const top = height('node-1');
          for (let h = Math.max(joinsAt, signedAt + 1); h <= top; h++) {
            if ((await commitSigners(h)).has(node5Address)) {
              signedAt = h;
              return true;
            }
          }
          return false;
        },
        () =>
          `a commit with node-5's precommit from height ${joinsAt} (node-1 at ${height('node-1')})`,
      );
      assert.ok(signedAt >= joinsAt);
      const read = await stakeValidators();
      const view = read.validators.find((validator) => validator.address === node5Address);
      assert.equal(view?.inSet, true);
      assert.equal(view?.power, SELF_BOND);
      assert.equal(view?.tokens, String(BigInt(SELF_BOND) * 1_000_000n));
      // hypermesh status now counts node-5 among the validators, with its power.
      const report = await clusterStatus();
      const node5 = report.nodes.find((node) => node.name === 'node-5');
      assert.deepEqual(node5 && [node5.role, node5.power], ['validator', SELF_BOND]);
      assert.ok(report.validators.some((validator) => validator.name === 'node-5'));
      assert.equal(report.totalPower, 40 + SELF_BOND);
      // The light-client rule of block verify accepts the set change (> 1/3 of the old set signed).
      const verified = await runCli(['block', 'verify', String(signedAt), '--cluster', clusterDir]);
      assert.equal(verified.code, 0, verified.out + verified.err);
      assert.match(verified.out, /^valid$/m);
    });

    it('keeps committing with node-4 stopped: every commit needs node-5 (70 of 80)', async () => {
      const stopped = await (nodes.get('node-4') as ValidatorProcess).stop();
      assert.equal(stopped.code, 0);
      const from = height('node-1') + 1;
      await until(
        () => height('node-1') >= from + 3 && height('node-5') >= from + 3,
        () => `three commits without node-4 (node-1 at ${height('node-1')}, from ${from})`,
      );
      for (let h = from + 1; h <= from + 3; h++) {
        const signers = await commitSigners(h);
        assert.ok(signers.has(node5Address), `height ${h}: node-5 signed`);
        assert.ok(!signers.has(node4Address), `height ${h}: node-4 is down`);
      }
    });

    it('slashes, jails and removes node-4 when it equivocates; the rest keep committing', async () => {
      const node4 = start('node-4', path.join(clusterDir, 'node-4', 'config.json'), {
        ...process.env,
        HYPERMESH_TEST_BUILD: '1',
        HYPERMESH_TEST_EQUIVOCATE: 'prevote',
      });
      await node4.ready;
      let evidenceAt = 0;
      await until(
        () => {
          const entry = logged('node-1', 'block committed').find(
            (line) => typeof line.evidence === 'number' && line.evidence > 0,
          );
          evidenceAt = typeof entry?.height === 'number' ? entry.height : 0;
          return evidenceAt > 0;
        },
        () =>
          `a block with node-4's equivocation (node-1 at ${height('node-1')}, node-4 at ${height('node-4')})`,
      );
      assert.ok(logged('node-4', 'TEST BUILD: broadcasting a conflicting prevote').length > 0);
      // Evidence reaches a block only through the proposal of a node that saw both prevotes
      // itself; which node that is depends on arrival order (node-1 may have passed the height).
      assert.ok(
        ['node-1', 'node-2', 'node-3', 'node-5'].some(
          (name) => logged(name, 'equivocation evidence').length > 0,
        ),
        'a validator other than node-4 detected the equivocation',
      );

      const read = await stakeValidators();
      assert.ok(read.height >= evidenceAt);
      const view = read.validators.find((validator) => validator.address === node4Address);
      assert.equal(view?.tokens, String(GENESIS_STAKE - (GENESIS_STAKE * SLASH_BPS) / 10_000n));
      assert.equal(view?.jailed, 'equivocation');
      assert.equal(view?.inSet, false);
      const others = read.validators.filter((validator) => validator.address !== node4Address);
      assert.ok(others.every((validator) => validator.jailed === 'none' && validator.inSet));

      // Removed at evidenceAt + 2: from then on commits carry none of its precommits.
      const goal = evidenceAt + 5;
      await until(
        () => height('node-1') >= goal,
        () => `commits after node-4's removal (node-1 at ${height('node-1')}, goal ${goal})`,
      );
      for (let h = evidenceAt + 2; h <= goal; h++) {
        const signers = await commitSigners(h);
        assert.ok(!signers.has(node4Address), `height ${h}: node-4 is no validator`);
        assert.ok(signers.has(node5Address), `height ${h}: node-5 signed`);
      }
      assert.ok(running('node-1') && running('node-5'));

      // Every honest node counted the slash once in its metrics: it ran through the evidence
      // block, and later evidence against node-4 (already jailed) slashes nothing more.
      for (const name of ['node-1', 'node-2', 'node-3', 'node-5']) {
        const ready = await (nodes.get(name) as ValidatorProcess).ready;
        assert.equal(typeof ready.metrics, 'string', `${name} serves metrics`);
        let slashes = Number.NaN;
        await until(
          async () => {
            slashes = await slashingEvents(ready.metrics as string);
            return slashes >= 1;
          },
          () => `${name}'s slashing events counter to count node-4's slash (at ${slashes})`,
          SCRAPE_MS,
        );
        assert.equal(slashes, 1, `${name}: one slashing event`);
      }
    });

    it('node-5 publishes with its added intermediate in its turn', async () => {
      // node-5 proposes most blocks (40 of 70): a request committed in a block it proposes is
      // its to publish (alone, for the window set in `before`). Each request's block is looked
      // up, so every publication is checked against the rotation, until one falls to node-5.
      // `cert request` writes the chain from the bundle in effect, so a certificate node-5
      // publishes chains to its added intermediate, and openssl accepts it against the root.
      const names = new Map<string, string>();
      for (const name of ['node-1', 'node-2', 'node-3']) {
        const key = await readWalletKey(path.join(clusterDir, name, `${name}.key`));
        names.set(formatAddress(Buffer.from(consensusAddress(key.publicKey))), name);
      }
      names.set(node5Address, 'node-5');
      const turns: string[] = [];
      let chainOf5 = '';
      for (let attempt = 0; attempt < 12 && chainOf5 === ''; attempt++) {
        const out = path.join(clusterDir, `svc-${attempt}`);
        const result = await runCli([
          'cert',
          'request',
          '--out',
          out,
          '--ip',
          '127.0.0.1',
          '--cluster',
          clusterDir,
          '--timeout-ms',
          String(STEP_MS),
        ]);
        assert.equal(result.code, 0, result.err);
        const found = /committed at height (\d+), published at height \d+ by (\S+?)\)/.exec(
          result.out,
        );
        assert.ok(found !== null, result.out);
        const { header } = decodeBlock(
          (await (session as OperatorSession).client('node-1').getBlock(Number(found[1]))).block,
        );
        const proposer = names.get(header.proposer) ?? header.proposer;
        turns.push(`height ${found[1]}: proposed by ${proposer}, published by ${found[2]}`);
        assert.equal(found[2], proposer, turns.join('; '));
        if (proposer === 'node-5') chainOf5 = `${out}.chain.pem`;
      }
      assert.notEqual(
        chainOf5,
        '',
        `no request fell in a block node-5 proposed: ${turns.join('; ')}`,
      );
      assert.ok(logged('node-5', 'ca publication submitted').length > 0);
      const verified = spawnSync(
        'openssl',
        [
          'verify',
          '-CAfile',
          path.join(clusterDir, 'ca', 'trustchain-root.pem'),
          '-untrusted',
          chainOf5,
          chainOf5,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(verified.status, 0, `${verified.stdout}${verified.stderr}`);
    });
  },
);
