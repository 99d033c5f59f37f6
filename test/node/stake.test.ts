import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CaesarGenesisError,
  CaesarGenesisErrorCode,
  DEFAULT_STAKING_PARAMS,
  caesarGenesisFromApp,
  checkStakingMatchesValidators,
  caesarDelegationQuery,
  caesarDelegatorIndexQuery,
  caesarStakingParamsQuery,
  caesarUnbondingQuery,
  caesarValidatorQuery,
  consensusAddress,
  ed25519Address,
  formatAddress,
  hybridAddress,
} from '../../src/caesar/index.js';
import { SEQUENCE_QUERY, decodeSequence } from '../../src/consensus/application/index.js';
import { parseGenesisJson, type GenesisDocument } from '../../src/consensus/genesis.js';
import type { NodeRpcClient } from '../../src/consensus/net/index.js';
import {
  decodeValidatorUpdates,
  encodeValidatorUpdates,
} from '../../src/consensus/validator-updates.js';
import { encodeDelegatorIndex } from '../../src/caesar/staking-state.js';
import { fromHex, toHex } from '../../src/crypto/bytes.js';
import { verifyBlockFromNode } from '../../src/node/block-verify.js';
import { initCluster, type ClusterInitResult } from '../../src/node/cluster-init.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { loadClusterTarget, openOperatorSession } from '../../src/node/operator.js';
import {
  genesisApplication,
  startValidatorNode,
  type ValidatorNode,
} from '../../src/node/validator-node.js';
import {
  StakeCliError,
  StakeErrorCode,
  readProvenDelegations,
} from '../../src/node/stake-ledger.js';
import { readWalletKey, type WalletKey } from '../../src/node/wallet.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * Caesar staking from `cluster init --staking` to `hypermesh stake`: the staking section the
 * ceremony writes (it matches the consensus validators, and bad flags — `--no-ca` among them —
 * are refused before anything is written; a genesis with staking but no TrustChain CA is
 * refused by the node), and the stake commands against one in-process validator of a chain with
 * the TrustChain CA (it holds all the voting power, so it commits alone). A new validator is
 * added through the governed procedure: `cluster add-node`, `ca intermediate issue`, the
 * holder's approval, then `stake create-validator` (refused before the intermediate).
 */
let root: string;
const nodes: ValidatorNode[] = [];

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-stake-'));
});
after(async () => {
  for (const running of nodes) await running.stop();
  await rm(root, { recursive: true, force: true });
});

const run = runCli;

async function readGenesis(dir: string): Promise<GenesisDocument> {
  return parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
}

describe('cluster init --staking', () => {
  it('writes a staking section whose self-bonds are power × powerUnit and match consensus', async () => {
    const out = path.join(root, 'staked');
    const result = await run([
      ...clusterInitArgs(out, 2),
      '--token-supply',
      '1000',
      '--validator-allocation',
      '10',
      '--staking',
      '--staking-param',
      'epochBlocks=5',
      '--staking-param',
      'powerUnit=2000000',
      '--validator-commission',
      '250',
    ]);
    assert.equal(result.code, 0, result.err);
    assert.match(
      result.out,
      /staking +self-bond 20 CSR per validator \(power 10 × powerUnit 2000000 base units\), commission 250 bps, set recomputed every 5 blocks, unbonding 1000 blocks/,
    );
    assert.match(result.out, /caesar +1000 CSR \(6 decimals\): 940 to the treasury/);
    assert.match(result.out, /staking on: hypermesh stake validators --cluster /);

    const genesis = await readGenesis(out);
    const caesar = caesarGenesisFromApp(genesis.app);
    assert.ok(caesar?.staking !== undefined);
    const { params, validators } = caesar.staking;
    assert.deepEqual(params, { ...DEFAULT_STAKING_PARAMS, epochBlocks: 5, powerUnit: 2_000_000n });
    assert.equal(validators.length, 2);
    for (const validator of genesis.validators) {
      const staked = validators.find(
        (v) => formatAddress(v.publicKey) === formatAddress(validator.publicKey),
      );
      assert.ok(staked !== undefined, `${validator.name} has a self-bond`);
      assert.equal(staked.selfBond, BigInt(validator.power) * params.powerUnit);
      assert.equal(staked.commission, 250);
    }
    // Allocations plus self-bonds are exactly the supply.
    const allocated = caesar.allocations.reduce((sum, a) => sum + a.amount, 0n);
    const bonded = validators.reduce((sum, v) => sum + v.selfBond, 0n);
    assert.equal(allocated + bonded, caesar.token.supply);
    assert.equal(caesar.token.supply, 1_000_000_000n);
    checkStakingMatchesValidators(caesar, genesis.validators);
    assert.deepEqual(
      genesisApplication(genesis).modules.map((module) => module.name),
      ['kv', 'caesar', 'dns', 'discovery', 'ca'],
    );

    // The node's check is the one that guards against a hand-edited genesis.
    const edited: GenesisDocument = {
      ...genesis,
      validators: genesis.validators.map((v, i) => (i === 0 ? { ...v, power: v.power + 1 } : v)),
    };
    assert.throws(
      () => genesisApplication(edited),
      (error: unknown) =>
        error instanceof CaesarGenesisError &&
        error.code === CaesarGenesisErrorCode.VALIDATOR_MISMATCH &&
        /self-bond 20000000 \/ powerUnit 2000000 = power 10, but the consensus genesis gives it 11/.test(
          error.message,
        ),
    );
    // A staking chain without the TrustChain CA (app.ca removed by hand) is refused: there,
    // create-validator would need no intermediate.
    const { ca, ...withoutCa } = genesis.app ?? {};
    assert.ok(ca !== undefined);
    for (const read of [
      () => genesisApplication({ ...genesis, app: withoutCa }),
      () => caesarGenesisFromApp(withoutCa),
    ]) {
      assert.throws(
        read,
        (error: unknown) =>
          error instanceof CaesarGenesisError &&
          error.code === CaesarGenesisErrorCode.STAKING_WITHOUT_CA &&
          /genesis app\.caesar\.staking needs an app\.ca section/.test(error.message),
      );
    }
  });

  it('writes no staking section without --staking', async () => {
    const layout = await initCluster({
      out: path.join(root, 'unstaked'),
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
    });
    assert.equal(layout.ledger?.staking, null);
    const caesar = caesarGenesisFromApp((await readGenesis(layout.dir)).app);
    assert.equal(caesar?.staking, undefined);
  });

  it('refuses bad staking flags precisely, before writing anything', async () => {
    const out = path.join(root, 'refused');
    const cases: [string[], RegExp][] = [
      [
        ['--staking', '--staking-param', 'epochs=5'],
        /--staking-param "epochs" is not a staking parameter \(known: epochBlocks, /,
      ],
      [
        ['--staking', '--staking-param', 'epochBlocks'],
        /--staking-param "epochBlocks" must be NAME=VALUE/,
      ],
      [
        ['--staking', '--staking-param', 'epochBlocks=-1'],
        /--staking-param epochBlocks="-1": expected a whole number below 2\^128/,
      ],
      [
        ['--staking', '--staking-param', 'powerUnit=1.5'],
        /--staking-param powerUnit="1\.5": expected a whole number of base units/,
      ],
      [['--staking', '--staking-param', 'epochBlocks=0'], /--staking-param epochBlocks: /],
      [
        ['--staking', '--staking-param', 'maxMissed=100'],
        /--staking-param maxMissed: maxMissed must be below signedWindow/,
      ],
      [
        ['--staking', '--staking-param', 'epochBlocks=5', '--staking-param', 'epochBlocks=6'],
        /--staking-param epochBlocks is given twice/,
      ],
      [
        ['--staking', '--staking-param', 'minValidatorStake=20000000'],
        /power 10 × powerUnit 1000000 = 10000000 base units is below minValidatorStake 20000000/,
      ],
      [
        ['--staking', '--staking-param', 'maxValidators=1'],
        /2 validator\(s\) is above the staking parameter maxValidators 1/,
      ],
      [
        ['--staking', '--token-supply', '20', '--validator-allocation', '0'],
        /a self-bond of 10 CSR × 2 validator\(s\) = 20 CSR leave nothing for the treasury/,
      ],
      [
        ['--staking', '--validator-commission', '10001'],
        /--validator-commission must be an integer from 0 to 10000/,
      ],
      [['--validator-commission', '5'], /add --staking to write a staking section/],
      [['--staking', '--no-caesar'], /--staking needs the Caesar ledger/],
      // Without the ca module any funded key could register a validator.
      [
        ['--staking', '--no-ca'],
        /--staking needs the TrustChain CA \(a new validator first gets an intermediate through the governed procedure, docs\/ca\.md\); it cannot be combined with --no-ca/,
      ],
    ];
    for (const [flags, pattern] of cases) {
      const result = await run([...clusterInitArgs(out, 2), ...flags]);
      assert.equal(result.code, 2, `${flags.join(' ')}: ${result.err}`);
      assert.match(result.err, pattern);
    }
    await assert.rejects(stat(out), { code: 'ENOENT' });
  });
});

describe('hypermesh stake against a running validator', () => {
  let layout: ClusterInitResult;

  interface ValidatorJson {
    address: string;
    name: string | null;
    tokens: string;
    power: number;
    inSet: boolean;
    jailed: string;
    commissionBps: number;
  }

  /** The validators at `height` (default: the latest committed one). */
  async function validators(height?: number): Promise<ValidatorJson[]> {
    const result = await run([
      'stake',
      'validators',
      '--cluster',
      layout.dir,
      '--json',
      ...(height === undefined ? [] : ['--height', String(height)]),
    ]);
    assert.equal(result.code, 0, result.err);
    return (JSON.parse(result.out) as { validators: ValidatorJson[] }).validators;
  }

  async function balanceOf(address: string): Promise<bigint> {
    const result = await run(['wallet', 'balance', address, '--cluster', layout.dir, '--json']);
    assert.equal(result.code, 0, result.err);
    return BigInt((JSON.parse(result.out) as { balance: string }).balance);
  }

  async function sequenceOf(publicKey: Uint8Array): Promise<number> {
    const session = await openOperatorSession(await loadClusterTarget(layout.dir));
    try {
      const answer = await session
        .client('node-1')
        .query({ path: SEQUENCE_QUERY, data: publicKey });
      return decodeSequence(answer.value);
    } finally {
      await session.close();
    }
  }

  /**
   * A one-validator staking chain in `dir` with its node running; `params` as the flags. It has
   * the TrustChain CA (`--staking` refuses `--no-ca`), so a new validator needs an intermediate
   * first (`candidate`).
   */
  async function startStakingChain(
    dir: string,
    params: Record<string, string>,
  ): Promise<{ running: ValidatorNode; treasuryKeyFile: string }> {
    layout = await initCluster({
      out: path.join(root, dir),
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
      ledger: { supply: 1000n, validatorAllocation: 10n, decimals: 6, symbol: 'TST' },
      staking: { params },
    });
    assert.ok(layout.ledger !== null);
    const config = await loadValidatorNodeConfig(layout.nodes[0]?.configFile as string, {});
    const running = await startValidatorNode(
      config,
      createLogger({ node: config.name }, () => undefined, 'error'),
    );
    nodes.push(running);
    return { running, treasuryKeyFile: layout.ledger.treasuryKeyFile };
  }

  /** Resolves once the chain has committed its first block. */
  function firstBlock(running: ValidatorNode): Promise<void> {
    return waitForCondition(
      running.driver,
      'commit',
      () => running.driver.status().committedHeight >= 1,
      'the first block',
      15_000,
    );
  }

  /** Sends `amount` tokens from the treasury to an account and waits for the commit. */
  async function fund(treasuryKeyFile: string, to: string, amount: string): Promise<void> {
    const sent = await run([
      'wallet',
      'send',
      '--to',
      to,
      '--amount',
      amount,
      '--key',
      treasuryKeyFile,
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(sent.code, 0, sent.err + sent.out);
  }

  /** `stake create-validator` for the node in `nodeDir` (self-bond and commission as given). */
  function createValidator(nodeDir: string, selfBond: string, commission: string) {
    return run([
      'stake',
      'create-validator',
      '--node-dir',
      nodeDir,
      '--self-bond',
      selfBond,
      '--commission',
      commission,
      '--cluster',
      layout.dir,
      '--wait',
    ]);
  }

  /**
   * Node `name` added to the running chain and given what a new validator needs, through the
   * governed procedure (docs/ca.md, "Adding a validator's intermediate"; the multi-process
   * version is test/node/staking-cluster.test.ts): `cluster add-node` (its node certificate
   * issued through consensus), 3 tokens from the treasury, then `ca intermediate issue` and
   * node-1's approval (the only holder: it takes effect). Before the intermediate, its
   * create-validator is refused at admission and nothing is submitted.
   */
  async function candidate(
    name: string,
    treasuryKeyFile: string,
  ): Promise<{ dir: string; key: WalletKey }> {
    const added = await run(['cluster', 'add-node', '--cluster', layout.dir, '--name', name]);
    assert.equal(added.code, 0, added.err + added.out);
    assert.match(added.out, /from the TrustChain CA \(serial [0-9a-f]+\)/);
    const dir = path.join(layout.dir, name);
    const key = await readWalletKey(path.join(dir, `${name}.key`));
    await fund(treasuryKeyFile, formatAddress(ed25519Address(key.publicKey)), '3');

    const early = await createValidator(dir, '1', '0');
    assert.equal(early.code, 1, early.out + early.err);
    assert.match(
      early.err,
      /node-1 refused the validator: CAESAR_VALIDATOR_NO_INTERMEDIATE: create-validator: key [0-9a-f]{64} holds no TrustChain intermediate in effect/,
    );
    assert.equal(await sequenceOf(key.publicKey), 0, 'nothing was submitted');

    const issued = await run([
      'ca',
      'intermediate',
      'issue',
      '--cluster',
      layout.dir,
      '--node',
      name,
      '--json',
    ]);
    assert.equal(issued.code, 0, issued.err + issued.out);
    const { hash } = JSON.parse(issued.out) as { hash: string };
    const approved = await run([
      'ca',
      'intermediate',
      'approve',
      '--cluster',
      layout.dir,
      '--node',
      'node-1',
      '--hash',
      hash,
      '--json',
    ]);
    assert.equal(approved.code, 0, approved.err + approved.out);
    assert.equal((JSON.parse(approved.out) as { active: string | null }).active, name);
    return { dir, key };
  }

  it('lists the set, delegates, unbonds, creates a validator and refuses bad input', async () => {
    // No issuance: stake then changes only by the transactions below.
    const { running, treasuryKeyFile } = await startStakingChain('live', { blockReward: '0' });
    await firstBlock(running);
    const node1 = layout.nodes[0]?.id as string;

    const listed = await run(['stake', 'validators', '--cluster', layout.dir]);
    assert.equal(listed.code, 0, listed.err);
    assert.match(
      listed.out,
      /^1 validator\(s\), 1 in the set; height \d+, proofs verified against state root [0-9a-f]{64} \(node-1\)\n/,
    );
    assert.match(
      listed.out,
      /power = stake \/ 1 TST \(scaled down together when the set's total would pass 2\^50\); minimum stake 1 TST; set recomputed every 100 blocks/,
    );
    assert.match(
      listed.out,
      new RegExp(
        `${node1} \\(node-1\\)\\n  stake 10 TST \\(10000000 base units\\), power 10, in the set, jailed: no, commission 0\\.00%`,
      ),
    );
    assert.deepEqual(
      (await validators()).map(
        ({ address, name, tokens, power, inSet, jailed, commissionBps }) => ({
          address,
          name,
          tokens,
          power,
          inSet,
          jailed,
          commissionBps,
        }),
      ),
      [
        {
          address: node1,
          name: 'node-1',
          tokens: '10000000',
          power: 10,
          inSet: true,
          jailed: 'none',
          commissionBps: 0,
        },
      ],
    );

    // Alice gets 5 TST from the treasury, then delegates 2 of them to node-1 (by name).
    const alice = path.join(root, 'alice.key');
    assert.equal((await run(['wallet', 'create', '--out', alice])).code, 0);
    const aliceWallet = await readWalletKey(alice);
    const aliceAddress = formatAddress(aliceWallet.address);
    await fund(treasuryKeyFile, aliceAddress, '5');

    const delegated = await run([
      'stake',
      'delegate',
      '--validator',
      'node-1',
      '--amount',
      '2',
      '--key',
      alice,
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(delegated.code, 0, delegated.err + delegated.out);
    assert.match(
      delegated.out,
      new RegExp(`delegate 2 TST \\(2000000 base units\\) to validator ${node1}, fee 0 TST`),
    );
    assert.match(delegated.out, /committed at height \d+, code 0 \(applied\)/);
    // The receipt's events, as wallet send --wait prints them.
    assert.match(delegated.out, new RegExp(`^  delegated 2 TST to validator ${node1}$`, 'm'));
    assert.equal(await balanceOf(aliceAddress), 3_000_000n);
    assert.equal((await validators())[0]?.tokens, '12000000');

    // Unbond 0.5 by the validator's address: an entry completing after unbondingBlocks.
    const unbonded = await run([
      'stake',
      'unbond',
      '--validator',
      node1.toUpperCase(),
      '--amount',
      '0.5',
      '--key',
      alice,
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(unbonded.code, 0, unbonded.err + unbonded.out);
    const committedAt = Number(/committed at height (\d+), code 0/.exec(unbonded.out)?.[1]);
    assert.match(
      unbonded.out,
      new RegExp(
        `unbonding 0\\.5 TST \\(500000 base units\\): returns to the balance at the end of block ${committedAt + DEFAULT_STAKING_PARAMS.unbondingBlocks} \\(proof verified at height \\d+\\)`,
      ),
    );
    assert.match(
      unbonded.out,
      new RegExp(
        `^  unbonded 0\\.5 TST from validator ${node1}, paid out at the end of block ${committedAt + DEFAULT_STAKING_PARAMS.unbondingBlocks}$`,
        'm',
      ),
    );
    assert.equal((await validators())[0]?.tokens, '11500000');
    assert.equal(await balanceOf(aliceAddress), 3_000_000n, 'the unbonded tokens wait');

    // Bad input: refused with a typed code, and nothing reaches the node.
    const sequence = await sequenceOf(aliceWallet.publicKey);
    const bad: [string[], number, RegExp][] = [
      [
        ['delegate', '--validator', 'node-9', '--amount', '1'],
        2,
        /--validator "node-9" is neither a node of the cluster \(node-1\) nor a validator address: it is not hex \[STAKE_BAD_VALIDATOR\]/,
      ],
      [
        ['delegate', '--validator', aliceAddress, '--amount', '1'],
        2,
        /it has 64 hex digits, a validator address has 40 .*\[STAKE_BAD_VALIDATOR\]/,
      ],
      [
        ['delegate', '--validator', 'node-1', '--amount', '0'],
        2,
        /--amount must be above zero \[STAKE_ZERO_AMOUNT\]/,
      ],
      [
        ['delegate', '--validator', 'node-1', '--amount=-1'],
        2,
        /--amount: amount "-1" is negative \[CAESAR_AMOUNT_NEGATIVE\]/,
      ],
      [
        ['unbond', '--validator', 'node-1', '--amount', '1.0000001'],
        2,
        /\[CAESAR_AMOUNT_TOO_PRECISE\]/,
      ],
      [
        ['delegate', '--validator', 'node-1', '--amount', '1', '--fee', 'free'],
        2,
        /--fee: amount "free" is not a number of tokens/,
      ],
      [['delegate', '--amount', '1'], 2, /--validator is required/],
      // Refused at admission by the ledger's rules: nothing was submitted to consensus.
      [
        ['delegate', '--validator', '00'.repeat(20), '--amount', '1'],
        1,
        /node-1 refused the delegation: CAESAR_UNKNOWN_VALIDATOR/,
      ],
      [
        ['delegate', '--validator', 'node-1', '--amount', '4'],
        1,
        /node-1 refused the delegation: CAESAR_INSUFFICIENT_FUNDS/,
      ],
      [
        ['unbond', '--validator', 'node-1', '--amount', '2'],
        1,
        /node-1 refused the unbonding: CAESAR_INSUFFICIENT_BOND/,
      ],
    ];
    for (const [flags, exit, pattern] of bad) {
      const result = await run([
        'stake',
        ...flags,
        '--key',
        alice,
        '--cluster',
        layout.dir,
        '--wait',
      ]);
      assert.equal(result.code, exit, `${flags.join(' ')}: ${result.err}`);
      assert.match(result.err, pattern);
    }
    assert.equal(await sequenceOf(aliceWallet.publicKey), sequence, 'nothing was submitted');
    assert.equal(await balanceOf(aliceAddress), 3_000_000n);
    assert.equal((await validators())[0]?.tokens, '11500000');

    const nodeKey = path.join(layout.nodes[0]?.dir as string, 'node-1.key');
    const notJailed = await run(['stake', 'unjail', '--key', nodeKey, '--cluster', layout.dir]);
    assert.equal(notJailed.code, 1);
    assert.match(notJailed.err, /node-1 refused the unjail: CAESAR_NOT_JAILED/);
    const exists = await run([
      'stake',
      'create-validator',
      '--node-dir',
      layout.nodes[0]?.dir as string,
      '--self-bond',
      '1',
      '--commission',
      '0',
      '--cluster',
      layout.dir,
    ]);
    assert.equal(exists.code, 1);
    assert.match(exists.err, /node-1 refused the validator: CAESAR_VALIDATOR_EXISTS/);

    // node-1's commission: a step above maxCommissionChangeBps (100) is refused at admission
    // (nothing is submitted), then the largest step up is applied.
    const node1Dir = layout.nodes[0]?.dir as string;
    const nodeSequence = await sequenceOf((await readWalletKey(nodeKey)).publicKey);
    const tooLarge = await run([
      'stake',
      'edit-validator',
      '--key',
      nodeKey,
      '--commission',
      '1.01%',
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(tooLarge.code, 1, tooLarge.err + tooLarge.out);
    assert.match(
      tooLarge.err,
      /node-1 refused the commission change: CAESAR_COMMISSION_CHANGE_TOO_LARGE: edit-validator: from 0 to 101 basis points is a change of 101; the most is 100/,
    );
    const badEdit: [string[], RegExp][] = [
      [['--node-dir', node1Dir, '--key', nodeKey, '--commission', '1'], /drop --key/],
      [['--key', nodeKey, '--commission', '100.5%'], /\[CAESAR_INVALID_COMMISSION\]/],
      [['--key', nodeKey], /--commission is required/],
      [['--commission', '1'], /give --node-dir DIR, or --key with the validator key/],
    ];
    for (const [flags, pattern] of badEdit) {
      const result = await run(['stake', 'edit-validator', ...flags, '--cluster', layout.dir]);
      assert.equal(result.code, 2, `${flags.join(' ')}: ${result.err}`);
      assert.match(result.err, pattern);
    }
    assert.equal(await sequenceOf((await readWalletKey(nodeKey)).publicKey), nodeSequence);
    assert.equal((await validators())[0]?.commissionBps, 0);
    const edited = await run([
      'stake',
      'edit-validator',
      '--node-dir',
      node1Dir,
      '--commission',
      '1%',
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(edited.code, 0, edited.err + edited.out);
    assert.match(
      edited.out,
      new RegExp(`^set the commission of validator ${node1} to 1\\.00%, fee 0 TST`, 'm'),
    );
    assert.match(edited.out, /committed at height \d+, code 0 \(applied\)/);
    assert.match(
      edited.out,
      new RegExp(`^  changed the commission of validator ${node1} from 0\\.00% to 1\\.00%$`, 'm'),
    );
    assert.equal((await validators())[0]?.commissionBps, 100);

    // A new validator: node-2, added to the cluster, funded and given its intermediate.
    const { dir: newDir, key: newKey } = await candidate('node-2', treasuryKeyFile);
    const newKeyFile = path.join(newDir, 'node-2.key');
    const newAddress = formatAddress(Buffer.from(consensusAddress(newKey.publicKey)));
    assert.equal(newAddress.length, 40);

    const badCreate: [string[], RegExp][] = [
      [
        ['--node-dir', newDir, '--self-bond', '1', '--commission', '10001'],
        /--commission "10001" must be basis points from 0 to 10000 .*\[CAESAR_INVALID_COMMISSION\]/,
      ],
      [
        ['--node-dir', newDir, '--key', alice, '--self-bond', '1', '--commission', '0'],
        /--node-dir takes the keys and plot from the node; drop --key/,
      ],
      [
        [
          '--key',
          alice,
          '--storage-root',
          'ab'.repeat(32),
          '--self-bond',
          '1',
          '--commission',
          '0',
        ],
        /holds a "ed25519" key; --falcon-key needs a FALCON-1024 key .*\[STAKE_BAD_VALIDATOR_IDENTITY\]/,
      ],
      [
        ['--key', newKeyFile, '--storage-root', 'xyz', '--self-bond', '1', '--commission', '0'],
        /--storage-root "xyz" is not a storage root: expected 64 hex digits .*\[STAKE_BAD_VALIDATOR_IDENTITY\]/,
      ],
      [
        // node-1's plot belongs to another key.
        [
          '--key',
          newKeyFile,
          '--plot',
          path.join(layout.nodes[0]?.dir as string, 'storage.plot'),
          '--self-bond',
          '1',
          '--commission',
          '0',
        ],
        /is plotted for key [0-9a-f]{64}, not the validator's key .*\[STAKE_BAD_VALIDATOR_IDENTITY\]/,
      ],
      [
        ['--key', newKeyFile, '--self-bond', '1', '--commission', '0'],
        /give the storage root with --storage-root HEX or --plot FILE/,
      ],
    ];
    for (const [flags, pattern] of badCreate) {
      const result = await run(['stake', 'create-validator', ...flags, '--cluster', layout.dir]);
      assert.equal(result.code, 2, `${flags.join(' ')}: ${result.err}`);
      assert.match(result.err, pattern);
    }
    assert.equal(await sequenceOf(newKey.publicKey), 0, 'nothing was submitted');

    const created = await createValidator(newDir, '2', '5%');
    assert.equal(created.code, 0, created.err + created.out);
    assert.match(
      created.out,
      new RegExp(
        `create validator ${newAddress} with a self-bond of 2 TST \\(2000000 base units\\), commission 5\\.00%`,
      ),
    );
    assert.match(created.out, /committed at height \d+, code 0 \(applied\)/);
    assert.match(
      created.out,
      new RegExp(
        `^  created validator ${newAddress} with a self-bond of 2 TST, commission 5\\.00%$`,
        'm',
      ),
    );
    // Read at the commit's height: an epoch may have ended since on a loaded machine.
    const createdAt = Number(/committed at height (\d+), code 0/.exec(created.out)?.[1]);
    const after = await validators(createdAt);
    assert.equal(after.length, 2);
    const joined = after.find((view) => view.address === newAddress);
    assert.deepEqual(
      joined && {
        tokens: joined.tokens,
        power: joined.power,
        inSet: joined.inSet,
        commissionBps: joined.commissionBps,
      },
      // Out of the set (power 0) until the next epoch; created in an epoch's last block (a
      // multiple of epochBlocks), that block's recomputation takes it in (2 TST / powerUnit).
      createdAt % DEFAULT_STAKING_PARAMS.epochBlocks === 0
        ? {
            tokens: '2000000',
            power: Number(2_000_000n / DEFAULT_STAKING_PARAMS.powerUnit),
            inSet: true,
            commissionBps: 500,
          }
        : { tokens: '2000000', power: 0, inSet: false, commissionBps: 500 },
    );
    assert.equal(await balanceOf(formatAddress(ed25519Address(newKey.publicKey))), 1_000_000n);

    // Alice also delegates 1 TST to the new validator: two delegations, one unbonding entry.
    const second = await run([
      'stake',
      'delegate',
      '--validator',
      newAddress,
      '--amount',
      '1',
      '--key',
      alice,
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(second.code, 0, second.err + second.out);
    const completion = committedAt + DEFAULT_STAKING_PARAMS.unbondingBlocks;

    const listedJson = await run([
      'stake',
      'delegations',
      '--key',
      alice,
      '--cluster',
      layout.dir,
      '--json',
    ]);
    assert.equal(listedJson.code, 0, listedJson.err);
    const document = JSON.parse(listedJson.out) as Record<string, unknown>;
    assert.match(String(document['stateRoot']), /^[0-9a-f]{64}$/);
    assert.ok(Number(document['height']) > committedAt);
    assert.deepEqual(
      {
        account: document['account'],
        validatorsRead: document['validatorsRead'],
        delegated: document['delegated'],
        unbondingTotal: document['unbondingTotal'],
        delegations: document['delegations'],
        unbonding: document['unbonding'],
      },
      {
        account: aliceAddress,
        validatorsRead: 2,
        delegated: '2500000',
        unbondingTotal: '500000',
        // By worth: 2 delegated minus 0.5 unbonded at node-1 (no rewards, one share per base
        // unit), then 1 at the new validator.
        delegations: [
          {
            validator: node1,
            name: 'node-1',
            shares: '1500000',
            tokens: '1500000',
            worth: '1.5',
            jailed: 'none',
            jailedUntil: 0,
          },
          {
            validator: newAddress,
            name: 'node-2',
            shares: '1000000',
            tokens: '1000000',
            worth: '1',
            jailed: 'none',
            jailedUntil: 0,
          },
        ],
        unbonding: [
          {
            validator: node1,
            name: 'node-1',
            amount: '500000',
            worth: '0.5',
            creationHeight: committedAt,
            completionHeight: completion,
          },
        ],
      },
    );
    const listedText = await run([
      'stake',
      'delegations',
      '--address',
      aliceAddress.toUpperCase(),
      '--cluster',
      layout.dir,
    ]);
    assert.equal(listedText.code, 0, listedText.err);
    assert.match(
      listedText.out,
      new RegExp(
        `^${aliceAddress}: 2 delegation\\(s\\) worth 2\\.5 TST \\(2500000 base units\\), 1 unbonding entry\\(ies\\) of 0\\.5 TST \\(500000 base units\\)\\n` +
          `  height \\d+, 2 validator\\(s\\) read, proofs verified against state root [0-9a-f]{64} \\(node-1\\)\\n` +
          `delegation to ${node1} \\(node-1\\): 1500000 shares worth 1\\.5 TST \\(1500000 base units\\), jailed: no\\n` +
          `delegation to ${newAddress} \\(node-2\\): 1000000 shares worth 1 TST \\(1000000 base units\\), jailed: no\\n` +
          `unbonding 0\\.5 TST \\(500000 base units\\) from ${node1} \\(node-1\\): unbonded at height ${committedAt}, returns to the balance at the end of block ${completion}\\n$`,
      ),
    );

    // The proofs are checked: a node that changes the delegation's value is caught (exit 1).
    const session = await openOperatorSession(await loadClusterTarget(layout.dir));
    try {
      const honest = session.client('node-1');
      const delegationPath = caesarDelegationQuery(fromHex(node1), aliceWallet.address).path;
      const lying: NodeRpcClient = {
        ...honest,
        query: async (request) => {
          const answer = await honest.query(request);
          if (request.path !== delegationPath || answer.value === null) return answer;
          const value = Uint8Array.from(answer.value);
          value[value.length - 1] = (value.at(-1) ?? 0) ^ 1;
          return { ...answer, value };
        },
      };
      await assert.rejects(
        readProvenDelegations(lying, aliceWallet.address),
        (error: unknown) =>
          error instanceof StakeCliError &&
          error.code === StakeErrorCode.PROOF_INVALID &&
          error.exitCode === 1,
      );
      const proven = await readProvenDelegations(honest, aliceWallet.address);
      assert.deepEqual(
        proven.delegations.map((view) => [view.validator, view.shares, view.tokens]),
        [
          [node1, 1_500_000n, 1_500_000n],
          [newAddress, 1_000_000n, 1_000_000n],
        ],
      );

      // The list comes from the account's delegator index, and its proof makes it complete: a
      // node that hides an entry, answers the index absent or adds an entry is refused.
      const operator = ed25519Address(newKey.publicKey);
      const forgeries: [string, Uint8Array, Uint8Array | null][] = [
        ['hides node-1', aliceWallet.address, encodeDelegatorIndex([fromHex(newAddress)])],
        ['answers absent', aliceWallet.address, null],
        ['adds node-1', operator, encodeDelegatorIndex([fromHex(node1), fromHex(newAddress)])],
      ];
      for (const [what, account, forged] of forgeries) {
        const indexPath = caesarDelegatorIndexQuery(account).path;
        let forgedAnswers = 0;
        const hiding: NodeRpcClient = {
          ...honest,
          query: async (request) => {
            const answer = await honest.query(request);
            if (request.path !== indexPath) return answer;
            forgedAnswers += 1;
            return { ...answer, value: forged };
          },
        };
        await assert.rejects(
          readProvenDelegations(hiding, account),
          (error: unknown) =>
            error instanceof StakeCliError &&
            error.code === StakeErrorCode.PROOF_INVALID &&
            error.exitCode === 1 &&
            /the node's answer does not verify/.test(error.message),
          what,
        );
        assert.equal(forgedAnswers, 1, `${what}: the index was read once`);
      }

      // Only the index and the validators it names are read, never the validator list: the
      // new validator's operator has its self-bond (2 TST) alone, so node-1 is not asked about.
      const described = (request: { path: string; data: Uint8Array }) =>
        `${request.path} ${toHex(request.data)}`;
      const asked: string[] = [];
      const counting: NodeRpcClient = {
        ...honest,
        query: (request) => {
          asked.push(described(request));
          return honest.query(request);
        },
      };
      const own = await readProvenDelegations(counting, operator);
      assert.deepEqual(
        [own.validatorsRead, own.delegations.map((view) => [view.validator, view.shares])],
        [1, [[newAddress, 2_000_000n]]],
      );
      assert.deepEqual(
        [...asked].sort(),
        [
          described(caesarStakingParamsQuery()),
          described(caesarDelegatorIndexQuery(operator)),
          described(caesarValidatorQuery(fromHex(newAddress))),
          described(caesarDelegationQuery(fromHex(newAddress), operator)),
          described(caesarUnbondingQuery(operator)),
        ].sort(),
      );
      asked.length = 0;
      const empty = await readProvenDelegations(counting, fromHex('ab'.repeat(32)));
      assert.deepEqual([empty.validatorsRead, empty.delegations], [0, []]);
      assert.equal(asked.length, 3, `params, index, unbonding: ${asked.join(', ')}`);
    } finally {
      await session.close();
    }

    // An account with no staking at all, at a given height.
    const nobody = 'ab'.repeat(32);
    const none = await run([
      'stake',
      'delegations',
      '--address',
      nobody,
      '--height',
      String(committedAt),
      '--cluster',
      layout.dir,
    ]);
    assert.equal(none.code, 0, none.err);
    assert.match(
      none.out,
      new RegExp(
        `^${nobody}: 0 delegation\\(s\\) worth 0 TST \\(0 base units\\), 0 unbonding entry\\(ies\\) of 0 TST \\(0 base units\\)\\n` +
          `  height ${committedAt}, 0 validator\\(s\\) read, .*\\nno delegations\\nno unbonding entries\\n$`,
      ),
    );
    const noneJson = JSON.parse(
      (await run(['stake', 'delegations', '--address', nobody, '--cluster', layout.dir, '--json']))
        .out,
    ) as { delegations: unknown[]; unbonding: unknown[]; delegated: string };
    assert.deepEqual([noneJson.delegations, noneJson.unbonding, noneJson.delegated], [[], [], '0']);

    const badDelegations: [string[], RegExp][] = [
      [[], /give the account with --address ADDR or --key FILE/],
      [['--address', nobody, '--key', alice], /give --address or --key, not both/],
      [['--address', 'xyz'], /--address "xyz" is not an address: character "x" at position 1/],
      [['--address', node1], /it has 40 hex digits, an address has 64/],
      [['--address', nobody, '--height', '0'], /--height/],
      [['--address', nobody, '--height', 'latest'], /--height/],
      [['--address', nobody, '--validator', node1], /--validator/],
    ];
    for (const [flags, pattern] of badDelegations) {
      const result = await run(['stake', 'delegations', ...flags, '--cluster', layout.dir]);
      assert.equal(result.code, 2, `${flags.join(' ')}: ${result.err}`);
      assert.match(result.err, pattern);
    }
    // A key file that cannot be read fails as in every command that reads one (exit 1).
    const missing = await run([
      'stake',
      'delegations',
      '--key',
      path.join(root, 'missing.key'),
      '--cluster',
      layout.dir,
    ]);
    assert.equal(missing.code, 1, missing.err);
    assert.match(missing.err, /no key file at .*missing\.key \[KEYFILE_NOT_FOUND\]/);
  });

  it('hands a created validator to consensus at the next epoch', async () => {
    const first = nodes.shift();
    await first?.stop();
    const { running, treasuryKeyFile } = await startStakingChain('epoch', {
      epochBlocks: '4',
      blockReward: '0',
    });
    assert.deepEqual(
      {
        count: running.driver.status().validators.count,
        power: running.driver.status().validators.totalPower,
      },
      { count: 1, power: 10 },
    );
    await firstBlock(running);
    const { dir: joinerDir, key: joinerKey } = await candidate('node-2', treasuryKeyFile);
    const created = await createValidator(joinerDir, '2', '250');
    assert.equal(created.code, 0, created.err + created.out);
    const createdAt = Number(/committed at height (\d+), code 0/.exec(created.out)?.[1]);

    // Staking's update (at the first epoch end from createdAt on) takes effect two heights later.
    await waitForCondition(
      running.driver,
      'commit',
      () => running.driver.status().validators.count === 2,
      () => `consensus to have 2 validators (it has ${running.driver.status().validators.count})`,
      30_000,
    );
    assert.equal(running.driver.status().validators.totalPower, 12);
    const joinedAt = running.driver.status().committedHeight;
    assert.ok(joinedAt > createdAt);
    const joinerAddress = formatAddress(Buffer.from(consensusAddress(joinerKey.publicKey)));
    const view = (await validators()).find((entry) => entry.address === joinerAddress);
    assert.deepEqual(view && { power: view.power, inSet: view.inSet, tokens: view.tokens }, {
      power: 2,
      inSet: true,
      tokens: '2000000',
    });
    // node-1 holds 10 of 12: more than two thirds, so it keeps committing alone.
    await waitForCondition(
      running.driver,
      'commit',
      () => running.driver.status().committedHeight >= joinedAt + 2,
      'two more blocks with the larger set',
      30_000,
    );

    // `block verify` derives the changed set from the node's validator updates and accepts it
    // only because the trusted (genesis) set vouched for the first block it decided.
    const verified = await run(['block', 'verify', String(joinedAt + 1), '--cluster', layout.dir]);
    assert.equal(verified.code, 0, verified.err + verified.out);
    assert.match(verified.out, /set +ok +validator set of the height: genesis \+ 1 change\(s\)/);
    // A node that hides the updates or invents others is caught: the set the verifier derives
    // is not the one the block names.
    const genesis = parseGenesisJson(await readFile(layout.genesisFile, 'utf8'));
    const session = await openOperatorSession(await loadClusterTarget(layout.dir));
    try {
      const honest = session.client('node-1');
      const hiding: NodeRpcClient = { ...honest, validatorUpdates: async () => [] };
      const hidden = await verifyBlockFromNode(hiding, genesis, joinedAt + 1);
      assert.equal(hidden.ok, false);
      const stake = hidden.verdict?.parts.find((part) => part.part === 'stake');
      assert.equal(stake && !stake.ok && stake.reason, 'validator-set-mismatch');
      const inventing: NodeRpcClient = {
        ...honest,
        // The whole list, changed (an `onPage` would get the honest pages past this wrapper).
        validatorUpdates: async (from, to, options) => {
          const plain = { ...options };
          delete plain.onPage;
          return (await honest.validatorUpdates(from, to, plain)).map((entry) => ({
            height: entry.height,
            bytes: encodeValidatorUpdates(
              decodeValidatorUpdates(entry.bytes).map((update) => ({ ...update, power: 3 })),
            ),
          }));
        },
      };
      const invented = await verifyBlockFromNode(inventing, genesis, joinedAt + 1);
      assert.equal(invented.ok, false);
      assert.ok(!invented.validatorSet.ok);
      assert.equal(invented.validatorSet.reason, 'header-names-another-set');
      // Re-executed here on the node's state witnesses (caesar staking and the ca module, with
      // their genesis state at height 1): the first block, the new validator's registration, the
      // blocks around the set change.
      const heights = new Set([1, createdAt, joinedAt - 2, joinedAt - 1, joinedAt, joinedAt + 1]);
      for (const height of heights) {
        const report = await verifyBlockFromNode(honest, genesis, height);
        assert.equal(report.ok, true, `block ${height}: ${JSON.stringify(report.verdict)}`);
        const work = report.verdict?.parts.find((part) => part.part === 'work');
        assert.ok(
          work?.ok === true && work.coverage === 'full',
          `block ${height} re-executed: ${JSON.stringify({ work, reexecution: report.reexecution })}`,
        );
      }
    } finally {
      await session.close();
    }
  });

  it('a hybrid wallet delegates, unbonds, proposes and votes from its hybrid account', async () => {
    while (nodes.length > 0) await nodes.shift()?.stop();
    const { running, treasuryKeyFile } = await startStakingChain('hybrid', { blockReward: '0' });
    await firstBlock(running);
    const node1 = layout.nodes[0]?.id as string;
    const file = path.join(root, 'hybrid.key');
    assert.equal((await run(['wallet', 'create', '--falcon', '--out', file])).code, 0);
    const wallet = await readWalletKey(file, { allowHybrid: true });
    assert.ok(wallet.falcon !== undefined);
    const address = formatAddress(wallet.address);
    assert.equal(address, formatAddress(hybridAddress(wallet.publicKey, wallet.falcon.publicKey)));
    const ed25519Only = formatAddress(ed25519Address(wallet.publicKey));
    await fund(treasuryKeyFile, address, '50');
    const common = ['--key', file, '--cluster', layout.dir, '--wait'];

    const delegated = await run([
      'stake',
      'delegate',
      '--validator',
      'node-1',
      '--amount',
      '20',
      ...common,
    ]);
    assert.equal(delegated.code, 0, delegated.err + delegated.out);
    assert.match(delegated.out, new RegExp(`  account ${address}\\n`));
    assert.match(delegated.out, new RegExp(`delegated 20 TST to validator ${node1}`));
    const unbonded = await run([
      'stake',
      'unbond',
      '--validator',
      'node-1',
      '--amount',
      '5',
      ...common,
    ]);
    assert.equal(unbonded.code, 0, unbonded.err + unbonded.out);
    assert.match(unbonded.out, new RegExp(`unbonded 5 TST from validator ${node1}`));
    // The proven unbonding entry is read for the hybrid address.
    assert.match(unbonded.out, /unbonding 5 TST \(5000000 base units\): returns to the balance/);

    const proposed = await run([
      'gov',
      'propose',
      '--param',
      'minDeposit=5000000',
      '--deposit',
      '10',
      '--title',
      'from a hybrid account',
      ...common,
    ]);
    assert.equal(proposed.code, 0, proposed.err + proposed.out);
    assert.match(proposed.out, new RegExp(`  proposer ${address}\\n`));
    assert.match(proposed.out, /proposal #1: voting ends with block \d+/);
    const voted = await run(['gov', 'vote', '1', 'yes', ...common]);
    assert.equal(voted.code, 0, voted.err + voted.out);
    assert.match(voted.out, /voted yes on proposal #1/);

    const listed = await run(['gov', 'list', '--cluster', layout.dir, '--json']);
    assert.equal(listed.code, 0, listed.err);
    const [proposal] = (
      JSON.parse(listed.out) as {
        proposals: {
          proposer: string;
          deposit: string;
          votes: { voter: string; option: string }[];
          tallySoFar: { yes: string } | null;
        }[];
      }
    ).proposals;
    assert.deepEqual(
      proposal && {
        proposer: proposal.proposer,
        deposit: proposal.deposit,
        votes: proposal.votes,
        yes: proposal.tallySoFar?.yes,
      },
      {
        proposer: address,
        deposit: '10000000',
        votes: [{ voter: address, option: 'yes' }],
        yes: '15000000',
      },
    );
    // 50 funded, 20 delegated, 10 deposited; the Ed25519 half's own account has nothing.
    assert.equal(await balanceOf(address), 20_000_000n);
    assert.equal(await balanceOf(ed25519Only), 0n);

    // Commands that act for a validator's own key refuse a hybrid key.
    for (const args of [
      ['stake', 'bond', '--amount', '1'],
      ['stake', 'unjail'],
    ]) {
      const refused = await run([...args, '--key', file, '--cluster', layout.dir]);
      assert.equal(refused.code, 1, refused.out);
      assert.match(refused.err, /is a hybrid \(Ed25519 \+ FALCON-1024\) wallet key/);
    }
  });

  it('refuses a chain without staking, and explains every command', async () => {
    const result = await run(['stake', 'validators', '--cluster', path.join(root, 'unstaked')]);
    assert.equal(result.code, 1);
    assert.match(
      result.err,
      /chain "hypermesh-dev" has no staking: .* \(hypermesh cluster init --staking writes one\) \[STAKE_STAKING_OFF\]/,
    );
    for (const command of [
      'validators',
      'delegations',
      'create-validator',
      'edit-validator',
      'delegate',
      'unbond',
      'unjail',
    ]) {
      const help = await run(['stake', command, '--help']);
      assert.equal(help.code, 0);
      assert.match(help.out, new RegExp(`^usage: hypermesh stake ${command}`));
    }
  });
});
