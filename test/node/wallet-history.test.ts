import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initCluster, type ClusterInitResult } from '../../src/node/cluster-init.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import {
  describeEvent,
  parseHistoryPosition,
  formatHistoryPosition,
} from '../../src/node/wallet-ledger.js';
import { CliError } from '../../src/node/cli-error.js';
import { runCli as run } from '../helpers/cli.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * `hypermesh wallet history` and the events `wallet send --wait` prints, against one in-process
 * validator (it holds all the voting power, so it commits alone): the receipts of the transfers
 * an account sent and received, newest first, paged with --limit and --before, in text and JSON.
 */
let root: string;
let node: ValidatorNode | undefined;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-wallet-history-'));
});
after(async () => {
  await node?.stop();
  await rm(root, { recursive: true, force: true });
});

interface HistoryJson {
  address: string;
  next: string | null;
  transactions: {
    height: number;
    index: number;
    txHash: string;
    code: number;
    result: string;
    events: {
      type: string;
      attributes: Record<string, string>;
      accounts: string[];
      text: string;
    }[];
  }[];
}

describe('wallet history', () => {
  let layout: ClusterInitResult;

  it('lists receipts newest first with one line per event, in pages', async () => {
    layout = await initCluster({
      out: path.join(root, 'live'),
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
      ledger: { supply: 1000n, validatorAllocation: 10n, decimals: 6, symbol: 'TST' },
    });
    const ledger = layout.ledger;
    assert.ok(ledger !== null);
    const config = await loadValidatorNodeConfig(layout.nodes[0]?.configFile as string, {});
    node = await startValidatorNode(
      config,
      createLogger({ node: config.name }, () => undefined, 'error'),
    );
    const running = node;
    await waitForCondition(
      running.driver,
      'commit',
      () => running.driver.status().committedHeight >= 1,
      'the first block',
      15_000,
    );
    const treasury = ledger.treasuryAddress;
    const bob = path.join(root, 'bob.key');
    const bobAddress = /address ([0-9a-f]{64})/.exec(
      (await run(['wallet', 'create', '--out', bob])).out,
    )?.[1];
    assert.ok(bobAddress);

    const empty = await run(['wallet', 'history', bobAddress, '--cluster', layout.dir]);
    assert.equal(empty.code, 0, empty.err);
    assert.match(empty.out, /: 0 transaction\(s\), newest first \(receipts from node-1\)\n/);
    assert.match(empty.out, /no more transactions\n$/);

    const send = async (args: string[]): Promise<string> => {
      const result = await run(['wallet', 'send', ...args, '--cluster', layout.dir, '--wait']);
      assert.equal(result.code, 0, result.err + result.out);
      return result.out;
    };
    const first = await send([
      '--to',
      bobAddress,
      '--amount',
      '1.5',
      '--fee',
      '0.001',
      '--key',
      ledger.treasuryKeyFile,
    ]);
    // The receipt's events after the commit line, from the sender's side.
    assert.match(
      first,
      new RegExp(
        `committed at height \\d+, code 0 \\(applied\\)\\n  sent 1\\.5 TST to ${bobAddress}\\n  fee 0\\.001 TST\\n$`,
      ),
    );
    await send(['--to', treasury, '--amount', '0.25', '--key', bob]);
    await send(['--to', bobAddress, '--amount', '2', '--key', ledger.treasuryKeyFile]);

    const all = await run(['wallet', 'history', bobAddress, '--cluster', layout.dir, '--json']);
    assert.equal(all.code, 0, all.err);
    const page = JSON.parse(all.out) as HistoryJson;
    assert.equal(page.address, bobAddress);
    assert.equal(page.next, null);
    assert.deepEqual(
      page.transactions.map((tx) => tx.events.map((event) => event.text)),
      [
        [`received 2 TST from ${treasury}`],
        [`sent 0.25 TST to ${treasury}`],
        [`received 1.5 TST from ${treasury}`, `fee 0.001 TST paid by ${treasury}`],
      ],
    );
    const positions = page.transactions.map((tx) => tx.height * 1000 + tx.index);
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => b - a),
      'newest first',
    );
    assert.ok(page.transactions.every((tx) => tx.code === 0 && tx.result === 'applied'));
    assert.deepEqual(page.transactions[2]?.events[0], {
      type: 'caesar/transfer',
      attributes: { from: treasury, to: bobAddress, amount: '1500000' },
      accounts: [treasury, bobAddress],
      text: `received 1.5 TST from ${treasury}`,
    });

    // Pages of one: the text tells how to get the next one, which starts below the last shown.
    const one = await run([
      'wallet',
      'history',
      '--key',
      bob,
      '--limit',
      '1',
      '--cluster',
      layout.dir,
    ]);
    assert.equal(one.code, 0, one.err);
    const newest = page.transactions[0]!;
    assert.match(
      one.out,
      new RegExp(
        `^${bobAddress}: 1 transaction\\(s\\), newest first \\(receipts from node-1\\)\\n` +
          `height ${newest.height}\\.${newest.index}  tx ${newest.txHash}  applied\\n` +
          `  received 2 TST from ${treasury}\\n`,
      ),
    );
    const next =
      /next page: hypermesh wallet history [0-9a-f]{64} --limit 1 --before (\d+\.\d+) --cluster /.exec(
        one.out,
      )?.[1];
    assert.equal(next, `${newest.height}.${newest.index}`);
    const second = await run([
      'wallet',
      'history',
      bobAddress,
      '--limit',
      '2',
      '--before',
      next!,
      '--cluster',
      layout.dir,
      '--json',
    ]);
    const rest = JSON.parse(second.out) as HistoryJson;
    assert.deepEqual(
      rest.transactions.map((tx) => tx.txHash),
      page.transactions.slice(1).map((tx) => tx.txHash),
    );
    // A full page may have more behind it: `next` names its last transaction.
    const last = rest.transactions[1]!;
    assert.equal(rest.next, `${last.height}.${last.index}`);

    const treasuryHistory = JSON.parse(
      (await run(['wallet', 'history', treasury, '--cluster', layout.dir, '--json'])).out,
    ) as HistoryJson;
    assert.equal(treasuryHistory.transactions.length, 3);
    assert.deepEqual(
      treasuryHistory.transactions[2]?.events.map((event) => event.text),
      [`sent 1.5 TST to ${bobAddress}`, 'fee 0.001 TST'],
    );

    const bad: [string[], RegExp][] = [
      [['--limit', '0'], /--limit/],
      [['--limit', '101'], /--limit/],
      [['--before', '12'], /--before "12" is not a position HEIGHT\.INDEX/],
      [['--before', '0.1'], /is not a position/],
      [['--before', 'a.b'], /is not a position/],
    ];
    for (const [flags, pattern] of bad) {
      const result = await run([
        'wallet',
        'history',
        bobAddress,
        '--cluster',
        layout.dir,
        ...flags,
      ]);
      assert.equal(result.code, 2, `${flags.join(' ')}: ${result.err}`);
      assert.match(result.err, pattern);
    }
    const neither = await run(['wallet', 'history', '--cluster', layout.dir]);
    assert.equal(neither.code, 2);
    assert.match(neither.err, /give the ADDRESS to read, or --key FILE/);
  });
});

describe('wallet history: positions and event lines', () => {
  it('round-trips positions and refuses others', () => {
    assert.deepEqual(parseHistoryPosition('57.0'), { height: 57, index: 0 });
    assert.equal(formatHistoryPosition({ height: 9, index: 12 }), '9.12');
    for (const text of [
      '57',
      '57.',
      '.1',
      '057.1',
      '57.01',
      '-1.0',
      '1.0.0',
      '99999999999999999.0',
    ]) {
      assert.throws(() => parseHistoryPosition(text), CliError, text);
    }
  });

  it('describes each kind of Caesar event, and others as key=value', () => {
    const token = { name: 'T', symbol: 'TST', decimals: 3, supply: 0n };
    const me = 'aa'.repeat(32);
    const other = 'bb'.repeat(32);
    const v = 'cc'.repeat(20);
    const line = (type: string, attributes: Record<string, string>) =>
      describeEvent({ type, attributes, accounts: [] }, me, token);
    assert.equal(
      line('caesar/transfer', { from: other, to: other, amount: '1' }),
      `transfer of 0.001 TST from ${other} to ${other}`,
    );
    assert.equal(
      line('caesar/create-validator', {
        validator: v,
        operator: me,
        bond: '5000',
        commissionBps: '250',
      }),
      `created validator ${v} with a self-bond of 5 TST, commission 2.50%`,
    );
    assert.equal(
      line('caesar/delegate', { delegator: me, validator: v, amount: '1500' }),
      `delegated 1.5 TST to validator ${v}`,
    );
    assert.equal(
      line('caesar/delegate', { delegator: other, validator: v, amount: '1500' }),
      `${other} delegated 1.5 TST to validator ${v}`,
    );
    assert.equal(
      line('caesar/unbond', { delegator: me, validator: v, amount: '10', completionHeight: '99' }),
      `unbonded 0.01 TST from validator ${v}, paid out at the end of block 99`,
    );
    assert.equal(line('caesar/unjail', { validator: v }), `unjailed validator ${v}`);
    assert.equal(
      line('caesar/submit-proposal', {
        proposal: '3',
        title: 'faster',
        deposit: '100000',
        votingEnd: '50',
      }),
      'proposed #3 "faster" with a deposit of 100 TST (voting ends with block 50)',
    );
    assert.equal(line('caesar/vote', { proposal: '3', option: 'no' }), 'voted no on proposal #3');
    assert.equal(line('kv/set', { key: 'a', n: '1' }), 'kv/set key=a n=1');
    assert.equal(line('caesar/fee', { payer: me, amount: 'x' }), 'fee x');
  });
});
