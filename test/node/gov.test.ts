import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatAddress } from '../../src/caesar/index.js';
import { SEQUENCE_QUERY, decodeSequence } from '../../src/consensus/application/index.js';
import { initCluster, type ClusterInitResult } from '../../src/node/cluster-init.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { loadClusterTarget, openOperatorSession } from '../../src/node/operator.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import { readWalletKey } from '../../src/node/wallet.js';
import { runCli } from '../helpers/cli.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * Parameter governance from `hypermesh gov` and `hypermesh stake bond`, against a staking chain
 * of two in-process validators (equal power: both must sign every block). The genesis gets a
 * short voting period and timelock by editing its `app.caesar.governance` section before the
 * nodes start, as an operator would before the chain's first block.
 */
let root: string;
const nodes: ValidatorNode[] = [];

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-gov-'));
});
after(async () => {
  for (const running of nodes) await running.stop();
  await rm(root, { recursive: true, force: true });
});

/**
 * Long enough for the votes and the bad-input checks below to run while voting is open, also
 * on a loaded machine (blocks keep coming while the CLI runs slowly).
 */
const VOTING_PERIOD = 40;
const TIMELOCK = 3;

interface ProposalJson {
  id: number;
  title: string;
  status: string;
  changes: Record<string, string>;
  votingEnd: number;
  executeHeight: number;
  tally: { yes: string; no: string; abstain: string; bonded: string } | null;
  tallySoFar: { yes: string; no: string; abstain: string; bonded: string } | null;
  outcomeSoFar: string | null;
  votes: { voter: string; option: string }[];
}

interface ListJson {
  height: number;
  params: { quorumBps: number; votingPeriod: number; timelock: number; minDeposit: string };
  count: number;
  proposals: ProposalJson[];
}

describe('hypermesh gov against a two-validator staking chain', () => {
  let layout: ClusterInitResult;

  async function list(extra: string[] = []): Promise<ListJson> {
    const result = await runCli(['gov', 'list', '--cluster', layout.dir, '--json', ...extra]);
    assert.equal(result.code, 0, result.err);
    return JSON.parse(result.out) as ListJson;
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

  const committed = (running: ValidatorNode, height: number, what: string) =>
    waitForCondition(
      running.driver,
      'commit',
      () => running.driver.status().committedHeight >= height,
      () => `${what} (height ${height}; at ${running.driver.status().committedHeight})`,
      60_000,
    );

  it('bonds, proposes, votes, passes, applies after the timelock, and refuses bad input', async () => {
    layout = await initCluster({
      out: path.join(root, 'chain'),
      validators: 2,
      basePort: 0,
      metricsBasePort: 0,
      ledger: { supply: 1000n, validatorAllocation: 100n, decimals: 6, symbol: 'TST' },
      staking: { params: { blockReward: '0' } },
      // The nodes' own service registrations would use their keys' sequences, which the
      // validators' votes here use too.
      discovery: false,
    });
    assert.ok(layout.ledger !== null);
    const genesisFile = path.join(layout.dir, 'genesis.json');
    const genesis = JSON.parse(await readFile(genesisFile, 'utf8')) as {
      app: { caesar: Record<string, unknown> };
    };
    genesis.app.caesar['governance'] = {
      votingPeriod: VOTING_PERIOD,
      timelock: TIMELOCK,
      minDeposit: '5000000',
    };
    await writeFile(genesisFile, `${JSON.stringify(genesis, null, 2)}\n`);
    for (const entry of layout.nodes) {
      const config = await loadValidatorNodeConfig(entry.configFile, {});
      nodes.push(
        await startValidatorNode(
          config,
          createLogger({ node: config.name }, () => undefined, 'error'),
        ),
      );
    }
    const [first] = nodes as [ValidatorNode];
    await committed(first, 1, 'the first block');
    const cluster = ['--cluster', layout.dir];
    const nodeKey = (i: number) =>
      path.join(layout.nodes[i]?.dir as string, `${layout.nodes[i]?.name as string}.key`);

    // stake bond: node-2 adds 5 TST to its own validator from its operator account.
    const bonded = await runCli([
      'stake',
      'bond',
      '--amount',
      '5',
      '--key',
      nodeKey(1),
      ...cluster,
      '--wait',
    ]);
    assert.equal(bonded.code, 0, bonded.err + bonded.out);
    assert.match(
      bonded.out,
      new RegExp(`bond 5 TST \\(5000000 base units\\) to own validator ${layout.nodes[1]?.id}`),
    );
    assert.match(bonded.out, /committed at height \d+, code 0 \(applied\)/);
    // The receipt's events, as wallet send --wait prints them.
    assert.match(
      bonded.out,
      new RegExp(`^  delegated 5 TST to validator ${layout.nodes[1]?.id}$`, 'm'),
    );
    const validators = await runCli(['stake', 'validators', ...cluster, '--json']);
    const stakes = (
      JSON.parse(validators.out) as { validators: { address: string; tokens: string }[] }
    ).validators;
    assert.equal(
      stakes.find((v) => v.address === layout.nodes[1]?.id)?.tokens,
      '15000000',
      'self-bond 10 + 5 TST',
    );

    // No proposals yet: the genesis parameters, proven.
    const empty = await list();
    assert.equal(empty.count, 0);
    assert.equal(empty.params.votingPeriod, VOTING_PERIOD);
    assert.equal(empty.params.timelock, TIMELOCK);
    assert.equal(empty.params.minDeposit, '5000000');
    assert.equal(empty.params.quorumBps, 3_340);

    // The treasury proposes: a quicker epoch and a higher quorum.
    const proposed = await runCli([
      'gov',
      'propose',
      '--param',
      'epochBlocks=7',
      '--param',
      'quorumBps=5000',
      '--deposit',
      '5',
      '--title',
      'quicker epochs',
      '--key',
      layout.ledger.treasuryKeyFile,
      ...cluster,
      '--wait',
    ]);
    assert.equal(proposed.code, 0, proposed.err + proposed.out);
    assert.match(proposed.out, /propose epochBlocks=7, quorumBps=5000 with a deposit of 5 TST/);
    const submittedAt = Number(/committed at height (\d+), code 0/.exec(proposed.out)?.[1]);
    const votingEnd = submittedAt + VOTING_PERIOD;
    const executeHeight = votingEnd + TIMELOCK;
    assert.match(
      proposed.out,
      new RegExp(
        `proposal #1: voting ends with block ${votingEnd}; if it passes it applies at the end of block ${executeHeight}`,
      ),
    );
    assert.match(
      proposed.out,
      new RegExp(
        `^  proposed #1 "quicker epochs" with a deposit of 5 TST \\(voting ends with block ${votingEnd}\\)$`,
        'm',
      ),
    );

    // node-1 votes no, then changes its mind (with --json); node-2 abstains.
    for (const [i, option, json] of [
      [0, 'no', false],
      [1, 'abstain', false],
      [0, 'yes', true],
    ] as const) {
      const voted = await runCli([
        'gov',
        'vote',
        '1',
        option,
        '--key',
        nodeKey(i),
        ...cluster,
        '--wait',
        ...(json ? ['--json'] : []),
      ]);
      assert.equal(voted.code, 0, voted.err + voted.out);
      if (!json) {
        assert.match(voted.out, new RegExp(`vote ${option} on proposal #1`));
        assert.match(voted.out, new RegExp(`^  voted ${option} on proposal #1$`, 'm'));
        continue;
      }
      const document = JSON.parse(voted.out) as {
        kind: string;
        status: string;
        code: number;
        height: number;
        txHash: string;
        events: { type: string; attributes: Record<string, string>; text: string }[];
      };
      assert.equal(document.kind, 'vote');
      assert.equal(document.status, 'committed');
      assert.equal(document.code, 0);
      assert.ok(document.height > submittedAt);
      assert.match(document.txHash, /^[0-9a-f]{64}$/);
      const vote = document.events.find((event) => event.type.endsWith('/vote'));
      assert.equal(vote?.text, 'voted yes on proposal #1');
      assert.equal(vote?.attributes.proposal, '1');
    }
    const voting = await list();
    const open = voting.proposals[0]!;
    assert.equal(open.status, 'voting');
    assert.equal(open.votes.length, 2);
    assert.deepEqual(open.tallySoFar, {
      yes: '10000000',
      no: '0',
      abstain: '15000000',
      bonded: '25000000',
    });
    assert.equal(open.outcomeSoFar, 'passed');
    const text = await runCli(['gov', 'list', ...cluster]);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^1 proposal\(s\); height \d+, proofs verified against state root/);
    assert.match(text.out, /#1 voting "quicker epochs": quorumBps=5000, epochBlocks=7/);
    assert.match(
      text.out,
      /tally so far: yes 10, no 0, abstain 15 of 25 TST bonded \(passed if voting ended now\)/,
    );

    // Bad input: refused with typed codes; nothing reaches consensus.
    const alice = path.join(root, 'alice.key');
    assert.equal((await runCli(['wallet', 'create', '--out', alice])).code, 0);
    const aliceWallet = await readWalletKey(alice);
    const treasury = await readWalletKey(layout.ledger.treasuryKeyFile);
    const sent = await runCli([
      'wallet',
      'send',
      '--to',
      formatAddress(aliceWallet.address),
      '--amount',
      '10',
      '--key',
      layout.ledger.treasuryKeyFile,
      ...cluster,
      '--wait',
    ]);
    assert.equal(sent.code, 0, sent.err + sent.out);
    const sequences = [
      await sequenceOf(aliceWallet.publicKey),
      await sequenceOf(treasury.publicKey),
    ];
    const treasuryKey = layout.ledger.treasuryKeyFile;
    const propose = (flags: string[], key = treasuryKey) => [
      'gov',
      'propose',
      '--title',
      't',
      '--key',
      key,
      ...flags,
      ...cluster,
    ];
    const bad: [string[], number, RegExp][] = [
      [
        propose(['--param', 'unbondingBlocks=5', '--deposit', '5']),
        2,
        /--param "unbondingBlocks" is not governable: .*\[CAESAR_GOV_UNKNOWN_PARAM\]/,
      ],
      [
        propose(['--param', 'epochs=5', '--deposit', '5']),
        2,
        /--param "epochs" is not a governable parameter \(governable: .*\[CAESAR_GOV_UNKNOWN_PARAM\]/,
      ],
      [
        propose(['--param', 'epochBlocks=1.5', '--deposit', '5']),
        2,
        /expected a whole number below 2\^128 .*\[GOV_BAD_PARAM\]/,
      ],
      [
        propose(['--param', 'epochBlocks=5', '--param', 'epochBlocks=6', '--deposit', '5']),
        2,
        /--param epochBlocks is given twice \[GOV_BAD_PARAM\]/,
      ],
      [propose(['--deposit', '5']), 2, /--param NAME=VALUE is required/],
      [
        propose(['--param', 'epochBlocks=0', '--deposit', '5']),
        1,
        /node-1 refused the proposal: CAESAR_GOV_INVALID_PARAM: proposal: epochBlocks: /,
      ],
      [
        propose(['--param', 'maxMissed=100', '--deposit', '5']),
        1,
        /CAESAR_GOV_INVALID_PARAM: proposal: maxMissed: maxMissed must be below signedWindow/,
      ],
      [
        propose(['--param', 'epochBlocks=5', '--deposit', '4.9']),
        1,
        /CAESAR_GOV_DEPOSIT_TOO_SMALL: gov\/submit-proposal: a deposit of 4900000 is below minDeposit 5000000/,
      ],
      [
        propose(['--param', 'epochBlocks=5', '--deposit', '11'], alice),
        1,
        /node-1 refused the proposal: CAESAR_INSUFFICIENT_FUNDS/,
      ],
      [
        ['gov', 'vote', '1', 'maybe', '--key', alice, ...cluster],
        2,
        /"maybe" is not a vote: write yes, no or abstain \[GOV_BAD_VOTE\]/,
      ],
      [
        ['gov', 'vote', 'one', 'yes', '--key', alice, ...cluster],
        2,
        /proposal ID "one" is not a number from 1 \[GOV_BAD_VOTE\]/,
      ],
      [
        ['gov', 'vote', '1', 'yes', '--key', alice, ...cluster],
        1,
        /node-1 refused the vote: CAESAR_GOV_NO_STAKE/,
      ],
      [
        ['gov', 'vote', '9', 'yes', '--key', nodeKey(0), ...cluster],
        1,
        /node-1 refused the vote: CAESAR_GOV_UNKNOWN_PROPOSAL: gov\/vote: there is no proposal 9/,
      ],
    ];
    for (const [args, exit, pattern] of bad) {
      const result = await runCli(args);
      assert.equal(result.code, exit, `${args.join(' ')}: ${result.err}`);
      assert.match(result.err, pattern, args.join(' '));
    }
    assert.deepEqual(
      [await sequenceOf(aliceWallet.publicKey), await sequenceOf(treasury.publicKey)],
      sequences,
      'nothing was submitted',
    );

    // The vote ends: passed, deposit back; the parameters have not changed yet.
    await committed(first, votingEnd, 'the end of the voting period');
    const passed = (await list(['--height', String(votingEnd)])).proposals[0]!;
    assert.equal(passed.status, 'passed');
    assert.deepEqual(passed.tally, {
      yes: '10000000',
      no: '0',
      abstain: '15000000',
      bonded: '25000000',
    });
    const passedText = await runCli(['gov', 'list', '--height', String(votingEnd), ...cluster]);
    assert.match(passedText.out, /#1 passed "quicker epochs"/);
    assert.match(passedText.out, /tally: yes 10, no 0, abstain 15 of 25 TST bonded/);

    // At the end of the execute height the change is in the state, proven; not before.
    await committed(first, executeHeight, 'the end of the timelock');
    const before = await list(['--height', String(executeHeight - 1)]);
    assert.equal(before.params.quorumBps, 3_340);
    assert.equal(before.proposals[0]?.status, 'passed');
    const applied = await list(['--height', String(executeHeight)]);
    assert.equal(applied.proposals[0]?.status, 'applied');
    assert.equal(applied.params.quorumBps, 5_000);
    const staking = await runCli(['stake', 'validators', ...cluster]);
    assert.match(staking.out, /set recomputed every 7 blocks/);
    const late = await runCli(['gov', 'vote', '1', 'no', '--key', nodeKey(1), ...cluster]);
    assert.equal(late.code, 1);
    assert.match(late.err, /node-1 refused the vote: CAESAR_GOV_VOTING_CLOSED/);
  });
});
