import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  caesarBalanceQuery,
  caesarFeePoolQuery,
  caesarGenesisFromApp,
  formatAddress,
  verifyCaesarBalance,
  verifyCaesarFeePool,
} from '../../src/caesar/index.js';
import type { CaesarGenesis } from '../../src/caesar/index.js';
import { SEQUENCE_QUERY, decodeSequence } from '../../src/consensus/application/index.js';
import { main } from '../../src/node/cli.js';
import { CLUSTER_FILES } from '../../src/node/cluster-init.js';
import { createWalletKey, readWalletKey, type WalletKey } from '../../src/node/wallet.js';
import { createTestCluster, eventually, type TestCluster } from './cluster-harness.js';

/**
 * Issue 6 §1 end to end: `hypermesh cluster init` writes the Caesar genesis (token, treasury,
 * validator accounts), four `hypermesh node start` processes install the ledger from it, and
 * `hypermesh wallet send --wait` moves tokens from the treasury wallet. Both balances are then
 * read with proven queries from two other nodes at the commit height (same state root), and a
 * transfer beyond the sender's balance is refused with CAESAR_INSUFFICIENT_FUNDS while nothing
 * moves (balances, fee pool and the sender's sequence, proven at a later height). Waits follow
 * the nodes' commit log lines (`eventually`), with deadlines.
 */
const VALIDATORS = 4;
const SUITE_MS = 150_000;
const START_MS = 40_000;
const COMMIT_MS = 30_000;

let cluster: TestCluster | undefined;
let recipient: WalletKey | undefined;

function requireCluster(): TestCluster {
  if (cluster === undefined) throw new Error('the cluster did not start');
  return cluster;
}

async function wallet(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['wallet', ...args, '--cluster', requireCluster().dir], {
    out: (text) => void (out += text),
    err: (text) => void (err += text),
  });
  return { code, out, err };
}

interface BalanceJson {
  node: string;
  height: number;
  stateRoot: string;
  balance: string;
  tokens: string;
}

async function balanceOn(node: string, address: string, height?: number): Promise<BalanceJson> {
  const result = await wallet([
    'balance',
    address,
    '--node',
    node,
    '--json',
    ...(height === undefined ? [] : ['--height', String(height)]),
  ]);
  assert.equal(result.code, 0, result.err);
  return JSON.parse(result.out) as BalanceJson;
}

async function committedOn(node: string, height: number, ms = COMMIT_MS): Promise<void> {
  const c = requireCluster();
  await eventually(`${node} at height ≥ ${height}`, ms, async () =>
    (await c.committedHeight(node)) >= height ? true : undefined,
  );
}

describe('the Caesar ledger on a 4-validator cluster', { timeout: SUITE_MS }, () => {
  let caesar: CaesarGenesis;
  let treasuryKey: string;
  let treasury: string;
  let transferHeight = 0;

  before(async () => {
    cluster = await createTestCluster(VALIDATORS);
    const c = cluster;
    await Promise.all(c.names.map((name) => c.start(name)));
    const section = caesarGenesisFromApp(c.genesis.app);
    assert.ok(section !== undefined, 'cluster init writes a Caesar section by default');
    caesar = section;
    assert.equal(caesar.token.decimals, 6, 'the default token: 1 token = 10^6 base units');
    treasuryKey = path.join(c.dir, CLUSTER_FILES.operatorDir, CLUSTER_FILES.treasuryKey);
    treasury = formatAddress((await readWalletKey(treasuryKey)).address);
    recipient = await createWalletKey(path.join(c.dir, '..', 'recipient.key'));
  });

  after(async () => {
    await cluster?.close();
  });

  it('installs the genesis allocations on every node', async () => {
    const c = requireCluster();
    await Promise.all(c.names.map((name) => committedOn(name, 1, START_MS)));
    const allocated = caesar.allocations.find((a) => formatAddress(a.address) === treasury);
    assert.ok(allocated, 'the treasury wallet holds an allocation');
    for (const name of c.names) {
      assert.equal(BigInt((await balanceOn(name, treasury, 1)).balance), allocated.amount);
    }
    for (const validator of c.genesis.validators) {
      const account = formatAddress(
        (await readWalletKey(path.join(c.dir, validator.name, `${validator.name}.key`))).address,
      );
      const held = caesar.allocations.find((a) => formatAddress(a.address) === account);
      assert.ok(held && held.amount > 0n, `${validator.name}'s operator account is funded`);
    }
  });

  it('commits a transfer from the treasury, proven on two other nodes', async () => {
    const c = requireCluster();
    const to = formatAddress((recipient as WalletKey).address);
    const before = BigInt((await balanceOn('node-1', treasury)).balance);
    const sent = await wallet([
      'send',
      '--to',
      to,
      '--amount',
      '12.5',
      '--fee',
      '0.25',
      '--key',
      treasuryKey,
      '--node',
      'node-1',
      '--wait',
    ]);
    assert.equal(sent.code, 0, `${sent.out}${sent.err}`);
    const committed = /committed at height (\d+), code 0 \(applied\)/.exec(sent.out);
    assert.ok(committed, sent.out);
    transferHeight = Number(committed[1]);

    const { decimals } = caesar.token;
    const amount = 125n * 10n ** BigInt(decimals - 1);
    const fee = 25n * 10n ** BigInt(decimals - 2);
    const answers = [];
    for (const node of ['node-2', 'node-3']) {
      await committedOn(node, transferHeight);
      const toBalance = await balanceOn(node, to, transferHeight);
      const fromBalance = await balanceOn(node, treasury, transferHeight);
      assert.equal(BigInt(toBalance.balance), amount, `${node}: recipient`);
      assert.equal(toBalance.tokens, '12.5');
      assert.equal(BigInt(fromBalance.balance), before - amount - fee, `${node}: treasury`);
      assert.equal(toBalance.height, transferHeight);
      answers.push(toBalance.stateRoot, fromBalance.stateRoot);
    }
    assert.equal(new Set(answers).size, 1, 'both nodes prove against the same state root');

    const pool = await c.client('node-4').query(caesarFeePoolQuery(transferHeight));
    assert.equal(verifyCaesarFeePool(pool), fee);
    assert.deepEqual(c.commits.forks, []);
  });

  it('refuses a transfer beyond the balance with its typed code, and moves nothing', async () => {
    const c = requireCluster();
    const from = recipient as WalletKey;
    const to = treasury;
    const sequenceBefore = decodeSequence(
      (await c.client('node-2').query({ path: SEQUENCE_QUERY, data: from.publicKey })).value,
    );
    const refused = await wallet([
      'send',
      '--to',
      to,
      '--amount',
      '12.5',
      '--fee',
      '0.000001',
      '--key',
      from.file,
      '--node',
      'node-2',
      '--wait',
    ]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.err,
      /node-2 refused the transfer: CAESAR_INSUFFICIENT_FUNDS: transfer: balance 12500000 is below amount 12500000 \+ fee 1/,
    );

    // Nothing moved: read again, proven, once the chain has gone past the refusal.
    const later = Math.max(...(await Promise.all(c.names.map((n) => c.committedHeight(n))))) + 1;
    for (const node of ['node-3', 'node-4']) {
      await committedOn(node, later);
      const client = c.client(node);
      const own = await client.query(caesarBalanceQuery(from.address, later));
      assert.equal(verifyCaesarBalance(from.address, own), 12_500_000n, `${node}: sender`);
      const sequence = await client.query({
        path: SEQUENCE_QUERY,
        data: from.publicKey,
        height: later,
      });
      assert.equal(decodeSequence(sequence.value), sequenceBefore, `${node}: no sequence used`);
      const treasuryNow = await balanceOn(node, treasury, later);
      const treasuryThen = await balanceOn(node, treasury, transferHeight);
      assert.equal(treasuryNow.balance, treasuryThen.balance, `${node}: treasury`);
    }
    assert.deepEqual(c.commits.forks, []);
  });
});
