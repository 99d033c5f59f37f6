import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initCluster, type ClusterInitResult } from '../../src/node/cluster-init.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import { visible } from '../../src/node/io.js';
import {
  describeEvent,
  describeResult,
  parseHistoryPosition,
  formatHistoryPosition,
} from '../../src/node/wallet-ledger.js';
import { CliError } from '../../src/node/cli-error.js';
import { encodeTransfer, formatAddress } from '../../src/caesar/index.js';
import {
  SEQUENCE_QUERY,
  buildTransaction,
  decodeSequence,
} from '../../src/consensus/application/index.js';
import { fromHex, toHex } from '../../src/crypto/bytes.js';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import { loadClusterTarget, openOperatorSession } from '../../src/node/operator.js';
import { readWalletKey } from '../../src/node/wallet.js';
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
    codeName: string | null;
    log: string;
    result: string;
    events: {
      type: string;
      attributes: Record<string, string>;
      accounts: string[];
      text: string;
    }[];
  }[];
}

let layout: ClusterInitResult;

describe('wallet history', () => {
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

describe('wallet history: refused transactions', () => {
  it('lists a transfer refused in its block under its sender, with its code; pages still work', async () => {
    const running = node;
    const chain = layout;
    assert.ok(running !== undefined && chain !== undefined, 'the chain of the test above');
    const ledger = chain.ledger;
    assert.ok(ledger !== null);
    const bobKey = await readWalletKey(path.join(root, 'bob.key'));
    const bobAddress = formatAddress(bobKey.address);
    const treasury = ledger.treasuryAddress;
    const genesis = await readGenesisFile(chain.genesisFile);
    const session = await openOperatorSession(await loadClusterTarget(chain.dir));
    try {
      const client = session.client('node-1');
      const sequence = decodeSequence(
        (await client.query({ path: SEQUENCE_QUERY, data: bobKey.publicKey })).value,
      );
      const build = (amount: bigint, offset: number) =>
        buildTransaction({
          chainId: genesis.chainId,
          privateKey: bobKey.privateKey,
          sequence: sequence + offset,
          module: 'caesar',
          body: encodeTransfer({ to: fromHex(treasury), amount }),
          stampDifficulty: genesis.proof.work.stampDifficulty,
        });
      // Bob holds 3.25 TST. Admission checks the ledger's rules for the sender's next
      // transaction only, so the second transfer (100 TST) is admitted behind the first and
      // refused in its block, where it uses its sequence number.
      const applied = build(1_000_000n, 0);
      const refused = build(100_000_000n, 1);
      // One call: both are admitted before the block that takes the first is proposed (a
      // transaction ending an idle wait starts the height one commit delay later).
      const admitted = await client.submitTxs([applied.bytes, refused.bytes]);
      assert.deepEqual(
        admitted.map((result) => result.ok),
        [true, true],
        JSON.stringify(admitted),
      );
      await waitForCondition(
        running.driver,
        'commit',
        async () =>
          (await client.txStatus(refused.txHash)).status === 'committed' &&
          (await client.txStatus(applied.txHash)).status === 'committed',
        'both transfers committed',
        20_000,
      );
      assert.equal(
        decodeSequence(
          (await client.query({ path: SEQUENCE_QUERY, data: bobKey.publicKey })).value,
        ),
        sequence + 2,
        'the refused transfer used its sequence',
      );

      // The node API: the refused transfer with its code and log, the applied one once.
      const page = await client.accountHistory({ account: bobKey.address, limit: 100 });
      const hashes = page.receipts.map((receipt) => toHex(receipt.txHash));
      const [newest, previous] = page.receipts;
      assert.equal(toHex(newest!.txHash), toHex(refused.txHash));
      assert.notEqual(newest!.code, 0);
      assert.match(newest!.log, /^CAESAR_INSUFFICIENT_FUNDS: /);
      assert.deepEqual(newest!.events, []);
      assert.equal(toHex(previous!.txHash), toHex(applied.txHash));
      assert.equal(previous!.code, 0);
      assert.equal(hashes.filter((hash) => hash === toHex(applied.txHash)).length, 1);
      assert.equal(new Set(hashes).size, hashes.length, 'no transaction twice');
      assert.equal(hashes.length, 5);
      // The refused transfer names no account: it is not in the treasury's history.
      const treasuryPage = await client.accountHistory({ account: fromHex(treasury), limit: 100 });
      const treasuryHashes = treasuryPage.receipts.map((receipt) => toHex(receipt.txHash));
      assert.ok(treasuryHashes.includes(toHex(applied.txHash)));
      assert.ok(!treasuryHashes.includes(toHex(refused.txHash)));

      // wallet history --json and text.
      const listed = await run(['wallet', 'history', bobAddress, '--cluster', chain.dir, '--json']);
      assert.equal(listed.code, 0, listed.err);
      const json = JSON.parse(listed.out) as HistoryJson;
      assert.deepEqual(
        json.transactions.map((tx) => tx.txHash),
        hashes,
      );
      const entry = json.transactions[0]!;
      assert.equal(entry.code, newest!.code);
      assert.equal(entry.codeName, 'CAESAR_INSUFFICIENT_FUNDS');
      assert.equal(entry.log, newest!.log);
      assert.equal(
        entry.result,
        `refused CAESAR_INSUFFICIENT_FUNDS (code ${newest!.code}): ${newest!.log.slice('CAESAR_INSUFFICIENT_FUNDS: '.length)}`,
      );
      assert.deepEqual(entry.events, []);
      assert.equal(json.transactions[1]?.codeName, null);
      assert.deepEqual(
        json.transactions[1]?.events.map((event) => event.text),
        [`sent 1 TST to ${treasury}`],
      );

      const text = await run([
        'wallet',
        'history',
        '--key',
        path.join(root, 'bob.key'),
        '--limit',
        '2',
        '--cluster',
        chain.dir,
      ]);
      assert.equal(text.code, 0, text.err);
      assert.match(
        text.out,
        new RegExp(
          `^${bobAddress}: 2 transaction\\(s\\), newest first \\(receipts from node-1\\)\\n` +
            `height ${entry.height}\\.${entry.index}  tx ${entry.txHash}  refused CAESAR_INSUFFICIENT_FUNDS \\(code ${entry.code}\\): [^\\n]+\\n` +
            `height \\d+\\.\\d+  tx ${toHex(applied.txHash)}  applied\\n  sent 1 TST to ${treasury}\\n` +
            `next page: `,
        ),
      );

      // Pages of two walk the same five entries.
      const walked: string[] = [];
      let before: string | null = null;
      do {
        const result = await run([
          'wallet',
          'history',
          bobAddress,
          '--limit',
          '2',
          ...(before === null ? [] : ['--before', before]),
          '--cluster',
          chain.dir,
          '--json',
        ]);
        assert.equal(result.code, 0, result.err);
        const next = JSON.parse(result.out) as HistoryJson;
        walked.push(...next.transactions.map((tx) => tx.txHash));
        before = next.next;
      } while (before !== null);
      assert.deepEqual(walked, hashes);
    } finally {
      await session.close();
    }
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

  it('writes the control characters of what the node sends as \\u escapes', () => {
    const token = { name: 'T', symbol: 'TST', decimals: 3, supply: 0n };
    const me = 'aa'.repeat(32);
    // A proposal title (chosen by whoever proposed it) and a log that would clear the screen.
    const title = 'vote \u001b[2J\u001b]0;owned\u0007 now\u009b';
    const event = describeEvent(
      {
        type: 'caesar/submit-proposal',
        attributes: { proposal: '1', title, deposit: '1', votingEnd: '9' },
        accounts: [],
      },
      me,
      token,
    );
    assert.equal(
      event,
      'proposed #1 "vote \\u001b[2J\\u001b]0;owned\\u0007 now\\u009b" with a deposit of 0.001 TST (voting ends with block 9)',
    );
    assert.equal(
      describeResult({ code: 7, log: 'CAESAR_X: bad\u001b[31m red' }),
      'refused CAESAR_X (code 7): bad\\u001b[31m red',
    );
    assert.equal(visible('plain é ✓'), 'plain é ✓');
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
      line('caesar/edit-validator', {
        validator: v,
        operator: me,
        oldCommissionBps: '250',
        newCommissionBps: '300',
      }),
      `changed the commission of validator ${v} from 2.50% to 3.00%`,
    );
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
