import assert from 'node:assert/strict';
import {
  dnsZonesGenesisFromApp,
  dnsZonesInitialState,
} from '../../src/trustchain/dns-zones/index.js';
import { clusterInitArgs, runCli } from '../helpers/cli.js';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CaesarGenesisError,
  caesarGenesisFromApp,
  ed25519Address,
  formatAddress,
  hybridAddress,
} from '../../src/caesar/index.js';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { readKeyFile, writeKeyFile } from '../../src/crypto/keyfile.js';
import type { CommitInfo } from '../../src/consensus/driver/index.js';
import { parseGenesisJson, type GenesisDocument } from '../../src/consensus/genesis.js';
import { CliError } from '../../src/node/cli-error.js';
import { initCluster, planLedger, type ClusterInitResult } from '../../src/node/cluster-init.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import {
  genesisApplication,
  startValidatorNode,
  type ValidatorNode,
} from '../../src/node/validator-node.js';
import { parseAddressArgument, readWalletKey } from '../../src/node/wallet.js';

/**
 * The Caesar ledger from `cluster init` to `hypermesh wallet`: the genesis section the ceremony
 * writes and its refusals, the modules a node installs from it, wallet keys, and the wallet
 * commands against one in-process validator (it holds all the voting power, so it commits
 * alone).
 */
let root: string;
let node: ValidatorNode | undefined;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-wallet-'));
});
after(async () => {
  await node?.stop();
  await rm(root, { recursive: true, force: true });
});

const run = runCli;

async function readGenesis(dir: string): Promise<GenesisDocument> {
  return parseGenesisJson(await readFile(path.join(dir, 'genesis.json'), 'utf8'));
}

async function mode(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

describe('cluster init: the Caesar genesis section', () => {
  it('allocates to a treasury wallet and to each validator, summing to the supply', async () => {
    const out = path.join(root, 'ledger');
    const result = await run([
      ...clusterInitArgs(out, 2),
      '--token-name',
      'Test Coin',
      '--token-symbol',
      'TST',
      '--token-decimals',
      '3',
      '--token-supply',
      '5000',
      '--validator-allocation',
      '100',
    ]);
    assert.equal(result.code, 0, result.err);
    assert.match(
      result.out,
      /caesar +5000 TST \(3 decimals\): 4800 to the treasury operator\/treasury\.key \([0-9a-f]{64}\), 100 to each validator's account/,
    );
    const treasuryFile = path.join(out, 'operator', 'treasury.key');
    assert.match(result.out, new RegExp(`treasury wallet: ${treasuryFile}`));
    assert.equal(await mode(treasuryFile), 0o600, 'the treasury key is private');
    const treasury = await readKeyFile(treasuryFile, { kind: 'ed25519' });
    const treasuryAddress = ed25519Address(ed25519RawPublicKey(treasury.keys.publicKey));

    const genesis = await readGenesis(out);
    assert.deepEqual(Object.keys(genesis.app ?? {}), ['caesar', 'dns', 'discovery', 'ca']);
    const caesar = caesarGenesisFromApp(genesis.app);
    assert.ok(caesar !== undefined);
    assert.deepEqual(caesar.token, {
      name: 'Test Coin',
      symbol: 'TST',
      decimals: 3,
      supply: 5_000_000n,
    });
    const expected = new Map([
      [formatAddress(treasuryAddress), 4_800_000n],
      ...genesis.validators.map(
        (validator) => [formatAddress(ed25519Address(validator.publicKey)), 100_000n] as const,
      ),
    ]);
    assert.deepEqual(
      new Map(caesar.allocations.map((a) => [formatAddress(a.address), a.amount])),
      expected,
    );
    // The validator's operator account is spendable with its node key file.
    const nodeWallet = await readWalletKey(path.join(out, 'node-1', 'node-1.key'));
    assert.ok(expected.has(formatAddress(nodeWallet.address)));
    assert.equal(nodeWallet.kind, 'node-identity');
  });

  it('writes the defaults, or no section with --no-caesar', async () => {
    const layout = await initCluster({
      out: path.join(root, 'defaults'),
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
    });
    assert.ok(layout.ledger !== null);
    const caesar = caesarGenesisFromApp((await readGenesis(layout.dir)).app);
    assert.deepEqual(caesar?.token, {
      name: 'Caesar',
      symbol: 'CSR',
      decimals: 6,
      supply: 1_000_000_000_000_000n,
    });
    assert.equal(layout.ledger.treasuryAmount, 999_000_000_000_000n);

    const none = path.join(root, 'no-caesar');
    const result = await run([
      ...clusterInitArgs(none, 1),
      '--no-caesar',
      '--no-dns',
      '--no-discovery',
      '--no-ca',
    ]);
    assert.equal(result.code, 0, result.err);
    const genesis = await readGenesis(none);
    assert.equal(genesis.app, undefined);
    assert.deepEqual((await readdir(path.join(none, 'operator'))).sort(), [
      'operator.key',
      'operator.pem',
    ]);
    assert.deepEqual(
      genesisApplication(genesis).modules.map((module) => module.name),
      ['kv'],
      'a chain without the section runs without Caesar',
    );
    const balance = await run(['wallet', 'balance', 'aa'.repeat(32), '--cluster', none]);
    assert.equal(balance.code, 1);
    assert.match(
      balance.err,
      /chain "hypermesh-dev" has no Caesar ledger: .*genesis\.json has no app\.caesar section/,
    );
  });

  it('refuses bad ledger flags precisely, before writing anything', async () => {
    const out = path.join(root, 'refused');
    const cases: [string[], RegExp][] = [
      [['--token-supply', '1.5'], /--token-supply must be a whole number of tokens .*got "1\.5"/],
      [['--token-supply=-5'], /--token-supply must be a whole number of tokens/],
      [['--token-supply', '1e9'], /--token-supply must be a whole number of tokens/],
      [['--token-supply', '0'], /--token-supply must be at least 1 CSR, got 0/],
      [['--validator-allocation', 'lots'], /--validator-allocation must be a whole number/],
      [['--token-decimals', '19'], /--token-decimals must be an integer from 0 to 18, got "19"/],
      [['--token-symbol', 'csr'], /--token-symbol "csr" must be 1 to 12 characters of A-Z/],
      [['--token-name', 'Cæsar'], /--token-name "Cæsar" must be 1 to 64 printable ASCII/],
      [
        ['--token-supply', '1000', '--validator-allocation', '500'],
        /--validator-allocation 500 CSR × 2 validator\(s\) = 1000 CSR leaves nothing for the treasury out of --token-supply 1000 CSR; the allocations must sum to the supply/,
      ],
      [
        ['--token-supply', '1' + '0'.repeat(33)],
        /--token-supply 10{33} CSR with 6 decimals is 10{39} base units, above the largest amount 2\^128 - 1/,
      ],
      [
        ['--no-caesar', '--token-symbol', 'ABC'],
        /--no-caesar .* cannot be combined with --token-symbol/,
      ],
    ];
    for (const [flags, pattern] of cases) {
      const result = await run([...clusterInitArgs(out, 2), ...flags]);
      assert.equal(result.code, 2, `${flags.join(' ')}: ${result.err}`);
      assert.match(result.err, pattern);
    }
    await assert.rejects(stat(out), { code: 'ENOENT' });
    assert.throws(
      () => planLedger({ supply: 10n, validatorAllocation: -1n }, 1),
      (error: unknown) => error instanceof CliError && /--validator-allocation/.test(error.message),
    );
    assert.deepEqual(planLedger({ supply: 10n, validatorAllocation: 0n, decimals: 0 }, 3), {
      token: { name: 'Caesar', symbol: 'CSR', decimals: 0, supply: 10n },
      validatorAmount: 0n,
      treasuryAmount: 10n,
    });
  });
});

describe('the modules a node installs from its genesis', () => {
  it('installs Caesar with its genesis state, and refuses sections it cannot use', async () => {
    const genesis = await readGenesis(path.join(root, 'ledger'));
    const application = genesisApplication(genesis);
    assert.deepEqual(
      application.modules.map((module) => module.name),
      ['kv', 'caesar', 'dns', 'discovery', 'ca'],
    );
    // caesar/params and one balance per allocation (the treasury and two validators), the
    // cluster zone's entries, and the CA's genesis bootstrap certificates (for each its record
    // and its owner, then the height-1 publication and the CT tree head).
    const dns = dnsZonesGenesisFromApp(genesis.app);
    assert.ok(dns !== undefined);
    assert.ok(application.ca !== undefined);
    // Two validators' STOQ and ACME certificates and the operator's.
    assert.equal(application.ca.genesisCertificates.length, 5);
    assert.equal(application.initialState.length, 4 + dnsZonesInitialState(dns).length + 2 * 5 + 2);
    assert.throws(
      () => genesisApplication({ ...genesis, app: { ...genesis.app, bank: {} } }),
      (error: unknown) =>
        error instanceof CliError &&
        /genesis app section "bank" names no module this node runs \(kv, caesar, dns, discovery, ca\)/.test(
          error.message,
        ),
    );
    assert.throws(
      () => genesisApplication({ ...genesis, app: { kv: {} } }),
      /the kv module takes no genesis data/,
    );
    assert.throws(
      () => genesisApplication({ ...genesis, app: { caesar: { token: {}, allocations: [] } } }),
      (error: unknown) => error instanceof CaesarGenesisError,
    );
  });
});

describe('wallet keys', () => {
  it('creates a private key file, never replaces it, and prints its address', async () => {
    const file = path.join(root, 'keys', 'alice.key');
    const created = await run(['wallet', 'create', '--out', file]);
    assert.equal(created.code, 0, created.err);
    const address = /address ([0-9a-f]{64})/.exec(created.out)?.[1];
    assert.ok(address);
    assert.equal(await mode(file), 0o600);
    const shown = await run(['wallet', 'address', '--key', file]);
    assert.equal(shown.out, `${address}\n`);
    const key = await readKeyFile(file, { kind: 'ed25519' });
    assert.equal(formatAddress(ed25519Address(ed25519RawPublicKey(key.keys.publicKey))), address);

    const again = await run(['wallet', 'create', '--out', file]);
    assert.equal(again.code, 2);
    assert.match(again.err, /exists; a wallet key is never replaced/);
    assert.equal((await run(['wallet', 'address', '--key', file])).out, `${address}\n`);

    const secret = path.join(root, 'keys', 'secret.key');
    const encrypted = await run(
      ['wallet', 'create', '--out', secret, '--passphrase-env', 'HM_WALLET_PASS'],
      { HM_WALLET_PASS: 'correct horse' },
    );
    assert.equal(encrypted.code, 0, encrypted.err);
    const locked = await run(['wallet', 'address', '--key', secret]);
    assert.equal(locked.code, 1);
    assert.match(locked.err, /KEYFILE_PASSPHRASE_REQUIRED/);
    const unlocked = await run(
      ['wallet', 'address', '--key', secret, '--passphrase-env', 'HM_WALLET_PASS'],
      { HM_WALLET_PASS: 'correct horse' },
    );
    assert.equal(unlocked.code, 0, unlocked.err);
    const missing = await run(['wallet', 'address', '--key', path.join(root, 'nope.key')]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /cannot read the wallet key .*nope\.key.*KEYFILE_NOT_FOUND/);
  });

  it('parses addresses and says what is wrong with a garbled one', () => {
    const hex = 'ab'.repeat(32);
    assert.equal(formatAddress(parseAddressArgument(hex, '--to')), hex);
    assert.equal(formatAddress(parseAddressArgument(`0x${hex.toUpperCase()}`, '--to')), hex);
    assert.throws(
      () => parseAddressArgument(hex.slice(1), '--to'),
      /--to "b.*" is not an address: it has 63 hex digits, an address has 64/,
    );
    assert.throws(
      () => parseAddressArgument(`${hex.slice(0, 10)}g${hex.slice(11)}`, '--to'),
      /character "g" at position 11 is not a hex digit/,
    );
    assert.throws(() => parseAddressArgument('', 'ADDRESS'), /it has 0 hex digits/);
  });
});

describe('hypermesh wallet against a running validator', () => {
  let layout: ClusterInitResult;

  async function waitForHeight(target: ValidatorNode, height: number): Promise<void> {
    while (target.driver.status().committedHeight < height) {
      await once(target.driver, 'commit', { signal: AbortSignal.timeout(15_000) });
    }
  }

  async function balanceOf(address: string): Promise<bigint> {
    const result = await run(['wallet', 'balance', address, '--cluster', layout.dir, '--json']);
    assert.equal(result.code, 0, result.err);
    return BigInt((JSON.parse(result.out) as { balance: string }).balance);
  }

  it('reads proven balances and sends transfers, refusing what it must', async () => {
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
    await waitForHeight(node, 1);

    const treasury = ledger.treasuryAddress;
    const shown = await run([
      'wallet',
      'balance',
      '--key',
      ledger.treasuryKeyFile,
      '--cluster',
      layout.dir,
    ]);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, new RegExp(`^${treasury}: 990 TST \\(990000000 base units\\)\\n`));
    assert.match(
      shown.out,
      /height \d+, proof verified against state root [0-9a-f]{64} \(node-1\)/,
    );

    const bob = path.join(root, 'bob.key');
    const bobAddress = /address ([0-9a-f]{64})/.exec(
      (await run(['wallet', 'create', '--out', bob])).out,
    )?.[1];
    assert.ok(bobAddress);
    const nobody = await run(['wallet', 'balance', bobAddress, '--cluster', layout.dir]);
    assert.match(nobody.out, /0 TST \(0 base units\) — no account \(proven absent\)/);

    const sent = await run([
      'wallet',
      'send',
      '--to',
      bobAddress,
      '--amount',
      '1.5',
      '--fee',
      '0.01',
      '--memo',
      'first',
      '--key',
      ledger.treasuryKeyFile,
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(sent.code, 0, sent.err + sent.out);
    assert.match(
      sent.out,
      /transfer 1\.5 TST \(1500000 base units\), fee 0\.01 TST \(10000 base units\)/,
    );
    assert.match(sent.out, /tx [0-9a-f]{64} \(sequence 0\) admitted by node-1/);
    assert.match(sent.out, /committed at height \d+, code 0 \(applied\)/);
    assert.equal(await balanceOf(bobAddress), 1_500_000n);
    assert.equal(await balanceOf(treasury), 990_000_000n - 1_510_000n);

    // Bob holds 1.5: sending 2 is refused at admission with the ledger's code, nothing moves.
    const tooMuch = await run([
      'wallet',
      'send',
      '--to',
      treasury,
      '--amount',
      '2',
      '--key',
      bob,
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(tooMuch.code, 1);
    assert.match(
      tooMuch.err,
      /node-1 refused the transfer: CAESAR_INSUFFICIENT_FUNDS: transfer: balance 1500000 is below amount 2000000 \+ fee 0/,
    );
    const self = await run([
      'wallet',
      'send',
      '--to',
      bobAddress,
      '--amount',
      '1',
      '--key',
      bob,
      '--cluster',
      layout.dir,
    ]);
    assert.equal(self.code, 1);
    assert.match(self.err, /CAESAR_SELF_TRANSFER/);

    // Base units, without waiting: admitted, then visible once committed.
    const units = await run([
      'wallet',
      'send',
      '--to',
      treasury,
      '--amount',
      '500000',
      '--base-units',
      '--key',
      bob,
      '--cluster',
      layout.dir,
    ]);
    assert.equal(units.code, 0, units.err);
    assert.doesNotMatch(units.out, /committed at/);

    const bad: [string[], RegExp][] = [
      [
        ['--amount', '1.0000001'],
        /--amount: amount "1\.0000001" has 7 decimal places, but the token has 6 .*\[CAESAR_AMOUNT_TOO_PRECISE\]/,
      ],
      [['--amount=-1'], /--amount: amount "-1" is negative \[CAESAR_AMOUNT_NEGATIVE\]/],
      [['--amount', '0'], /--amount must be above zero/],
      [['--amount', '1', '--fee', 'free'], /--fee: amount "free" is not a number of tokens/],
      [
        ['--amount', '1.5', '--base-units'],
        /base units are whole numbers \[CAESAR_AMOUNT_TOO_PRECISE\]/,
      ],
      [['--amount', '1e40'], /without an exponent\) \[CAESAR_AMOUNT_SYNTAX\]/],
      [
        ['--amount', '400000000000000000000000000000000'],
        /is too large: .*\[CAESAR_AMOUNT_TOO_LARGE\]/,
      ],
      [['--amount', '1', '--memo', ''], /--memo must be 1 to 256 bytes/],
    ];
    for (const [flags, pattern] of bad) {
      const result = await run([
        'wallet',
        'send',
        '--to',
        treasury,
        '--key',
        bob,
        '--cluster',
        layout.dir,
        ...flags,
      ]);
      assert.equal(result.code, 2, `${flags.join(' ')}: ${result.err}`);
      assert.match(result.err, pattern);
    }
    const garbled = await run([
      'wallet',
      'send',
      '--to',
      'not-an-address',
      '--amount',
      '1',
      '--key',
      bob,
      '--cluster',
      layout.dir,
    ]);
    assert.equal(garbled.code, 2);
    assert.match(
      garbled.err,
      /--to "not-an-address" is not an address: character "n" at position 1/,
    );
    const both = await run(['wallet', 'balance', treasury, '--key', bob, '--cluster', layout.dir]);
    assert.match(both.err, /give an ADDRESS or --key, not both/);

    // The base-units transfer commits: re-read after each commit until bob's balance shows it
    // (the next commit is listened for before each read, so none is missed).
    const running = node;
    for (;;) {
      const nextCommit = once(running.driver, 'commit', { signal: AbortSignal.timeout(15_000) });
      if ((await balanceOf(bobAddress)) === 1_000_000n) {
        nextCommit.catch(() => undefined);
        break;
      }
      const [info] = (await nextCommit) as [CommitInfo];
      assert.ok(info.height > 0);
    }
    assert.equal(await balanceOf(treasury), 990_000_000n - 1_510_000n + 500_000n);
  });

  it('creates a hybrid (Ed25519 + FALCON-1024) wallet, funds it and sends from it', async () => {
    const ledger = layout.ledger;
    assert.ok(ledger !== null);
    const treasury = ledger.treasuryAddress;
    const file = path.join(root, 'keys', 'pq.key');
    const created = await run(['wallet', 'create', '--falcon', '--out', file]);
    assert.equal(created.code, 0, created.err);
    assert.match(created.out, /^hybrid wallet key written to /);
    const address = /address ([0-9a-f]{64})/.exec(created.out)?.[1];
    assert.ok(address);
    assert.equal(await mode(file), 0o600);
    const stored = await readKeyFile(file, { kind: 'ed25519-falcon-1024-r3' });
    const edKey = ed25519RawPublicKey(stored.keys.ed25519.publicKey);
    assert.equal(formatAddress(hybridAddress(edKey, stored.keys.falcon.publicKey)), address);
    assert.notEqual(formatAddress(ed25519Address(edKey)), address);
    assert.equal((await run(['wallet', 'address', '--key', file])).out, `${address}\n`);
    // Commands that sign with Ed25519 alone (staking, governance) refuse a hybrid key.
    await assert.rejects(readWalletKey(file), /hybrid \(Ed25519 \+ FALCON-1024\) wallet key/);

    const funded = await run([
      'wallet',
      'send',
      '--to',
      address,
      '--amount',
      '2',
      '--key',
      ledger.treasuryKeyFile,
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(funded.code, 0, funded.err + funded.out);
    assert.equal(await balanceOf(address), 2_000_000n);

    // Whoever holds the Ed25519 half alone (written out as a plain wallet key) sends from its
    // own, funded, account: that uses the key's sequence 0, never the hybrid account's.
    const edOnlyFile = path.join(root, 'keys', 'pq-ed25519-half.key');
    await writeKeyFile(edOnlyFile, { kind: 'ed25519', keys: stored.keys.ed25519 });
    const edAddress = formatAddress(ed25519Address(edKey));
    const sendWith = (key: string, to: string, amount: string) =>
      run([
        'wallet',
        'send',
        '--to',
        to,
        '--amount',
        amount,
        '--key',
        key,
        '--cluster',
        layout.dir,
        '--wait',
      ]);
    const edFunded = await sendWith(ledger.treasuryKeyFile, edAddress, '1');
    assert.equal(edFunded.code, 0, edFunded.err + edFunded.out);
    const edSent = await sendWith(edOnlyFile, treasury, '0.25');
    assert.equal(edSent.code, 0, edSent.err + edSent.out);
    assert.match(edSent.out, /tx [0-9a-f]{64} \(sequence 0\) admitted by node-1/);

    const before = await balanceOf(treasury);
    const sent = await run([
      'wallet',
      'send',
      '--to',
      treasury,
      '--amount',
      '0.5',
      '--fee',
      '0.01',
      '--key',
      file,
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(sent.code, 0, sent.err + sent.out);
    assert.match(sent.out, new RegExp(`from ${address}\n`));
    // The hybrid account's own sequence 0 (proven by the node), not the Ed25519 key's next, 1.
    assert.match(sent.out, /tx [0-9a-f]{64} \(sequence 0\) admitted by node-1/);
    assert.match(sent.out, /committed at height \d+, code 0 \(applied\)/);
    assert.match(sent.out, /sent 0\.5 TST to /);
    assert.equal(await balanceOf(address), 2_000_000n - 510_000n);
    assert.equal(await balanceOf(treasury), before + 500_000n);
    // The Ed25519 half alone spent only from its own account.
    assert.equal(await balanceOf(edAddress), 750_000n);
    const again = await sendWith(file, treasury, '0.1');
    assert.equal(again.code, 0, again.err + again.out);
    assert.match(again.out, /tx [0-9a-f]{64} \(sequence 1\) admitted by node-1/);
    assert.equal(await balanceOf(address), 2_000_000n - 610_000n);

    const history = await run(['wallet', 'history', '--key', file, '--cluster', layout.dir]);
    assert.equal(history.code, 0, history.err);
    assert.match(history.out, new RegExp(`^${address}: 3 transaction\\(s\\)`));
    assert.match(history.out, /sent 0\.5 TST to /);
    assert.match(history.out, /received 2 TST from /);
  });
});
