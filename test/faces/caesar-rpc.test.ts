import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  VoteOption,
  consensusAddress,
  encodeGovTx,
  encodeStakingTx,
  encodeTransfer,
  formatAddress,
} from '../../src/caesar/index.js';
import { buildTransaction } from '../../src/consensus/application/index.js';
import type { GenesisDocument } from '../../src/consensus/genesis.js';
import { fromHex, toHex } from '../../src/crypto/bytes.js';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import {
  CAESAR_SERVICE_NAME,
  createCaesarRpcClient,
  type CaesarRpcClient,
} from '../../src/faces/caesar-rpc.js';
import { readGenesisFile } from '../../src/node/cluster-layout.js';
import { CLUSTER_FILES, initCluster, type ClusterInitResult } from '../../src/node/cluster-init.js';
import type { NodeConfig } from '../../src/node/config.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import { buildStoqParts, type StoqParts } from '../../src/node/stoq-node.js';
import { startValidatorNode, type ValidatorNode } from '../../src/node/validator-node.js';
import { readWalletKey, type WalletKey } from '../../src/node/wallet.js';
import { StoqError, StoqErrorCode } from '../../src/stoq/index.js';
import { runCli } from '../helpers/cli.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * `hypermesh.caesar.v1` over real STOQ (QUIC) against one in-process validator of a staking
 * chain (it holds all the power, so it commits alone), with the operator's client identity:
 * every state answer's proofs checked by the client; receipts and history of a transfer;
 * admission of Caesar transactions (and refusal of others); delegations, unbondings, validators,
 * rewards, parameters, proposals and votes; and the Caesar metrics moving with a transfer.
 */
let root: string;
let node: ValidatorNode | undefined;
let client: StoqParts | undefined;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'hypermesh-caesar-rpc-'));
});
after(async () => {
  await client?.close();
  await node?.stop();
  await rm(root, { recursive: true, force: true });
});

const BLOCK_REWARD = 1_000n;

async function operatorEndpoint(layout: ClusterInitResult): Promise<StoqParts> {
  const config: NodeConfig = {
    cluster: layout.chainId,
    name: CLUSTER_FILES.operatorName,
    transport: 'quic',
    listen: { host: '127.0.0.1', port: 0 },
    auth: { mode: 'delegated', delegationTtlSeconds: 3600 },
    identity: {
      keyFile: layout.operator.keyFile,
      certificateFile: layout.operator.certificateFile,
    },
    trust: { rootsFile: layout.trustRootsFile },
    peers: Object.fromEntries(layout.nodes.map((entry) => [entry.name, [entry.stoq]])),
    metrics: null,
  };
  return buildStoqParts(
    config,
    createLogger({ node: 'operator' }, () => undefined, 'error'),
  );
}

/** One sample of the node's metrics text, by the full series name with labels. */
/** The values of `series` in one scrape of `url` (so they describe the same moment). */
async function metrics(url: string, ...series: string[]): Promise<number[]> {
  const lines = (await (await fetch(url)).text()).split('\n');
  return series.map((name) => {
    const line = lines.find((entry) => entry.startsWith(`${name} `));
    assert.ok(line !== undefined, `${name} in ${url}`);
    return Number(line.slice(name.length + 1));
  });
}

/** The receipt of a committed transaction (the answer must not be `pending`). */
async function committedReceipt(caesar: CaesarRpcClient, txHash: Uint8Array) {
  const answer = await caesar.receipt(txHash);
  assert.equal(answer.status, 'committed');
  return answer.receipt;
}

async function metric(url: string, series: string): Promise<number> {
  const [value] = await metrics(url, series);
  return value!;
}

describe(CAESAR_SERVICE_NAME, () => {
  it('serves proven ledger state, receipts, history and admission; metrics follow', async () => {
    const layout = await initCluster({
      out: path.join(root, 'chain'),
      validators: 1,
      basePort: 0,
      metricsBasePort: 0,
      ledger: { supply: 1000n, validatorAllocation: 100n, decimals: 6, symbol: 'TST' },
      staking: { params: { blockReward: BLOCK_REWARD.toString() }, commission: 250 },
      discovery: false,
    });
    const ledger = layout.ledger;
    assert.ok(ledger !== null);
    const config = await loadValidatorNodeConfig(layout.nodes[0]?.configFile as string, {});
    node = await startValidatorNode(
      config,
      createLogger({ node: config.name }, () => undefined, 'error'),
    );
    const running = node;
    const metricsUrl = running.metricsUrl;
    assert.ok(metricsUrl !== null);
    const genesis: GenesisDocument = await readGenesisFile(layout.genesisFile);
    const heightAtLeast = (height: number, what: string) =>
      waitForCondition(
        running.driver,
        'commit',
        () => running.driver.status().committedHeight >= height,
        what,
        20_000,
      );
    await heightAtLeast(2, 'two blocks');
    client = await operatorEndpoint(layout);
    const caesar: CaesarRpcClient = createCaesarRpcClient({
      endpoint: client.endpoint,
      peer: 'node-1',
    });

    const treasury: WalletKey = await readWalletKey(ledger.treasuryKeyFile);
    const validatorKey = await readWalletKey(
      path.join(layout.nodes[0]!.dir, `${layout.nodes[0]!.name}.key`),
    );
    const validator = consensusAddress(ed25519RawPublicKey(validatorKey.privateKey));
    const bob = fromHex('b0'.repeat(32));

    // Parameters, proven.
    const params = await caesar.params();
    assert.equal(params.view.token.symbol, 'TST');
    assert.equal(params.view.token.decimals, 6);
    assert.equal(params.view.staking?.['blockReward'], BLOCK_REWARD.toString());
    assert.equal(params.view.governance?.['quorumBps'], 3340);
    assert.equal(params.stateRoot.length, 32);

    // Balance with its proof; the same height can be asked for again.
    const start = await caesar.balance(treasury.address);
    assert.equal(start.view, ledger.treasuryAmount);
    const again = await caesar.balance(treasury.address, start.height);
    assert.deepEqual(again, start);

    // The validator and its self-bond (a delegation of its operator account).
    const validators = await caesar.validators();
    assert.equal(validators.view.total, 1);
    const [only] = validators.view.validators;
    assert.equal(only?.address, toHex(validator));
    assert.equal(only?.operator, formatAddress(validatorKey.address));
    assert.equal(only?.inSet, true);
    assert.equal(only?.jailed, 'none');
    assert.equal(only?.commissionBps, 250);
    assert.equal(validators.view.next, null);

    const rewards = await caesar.rewards({ validator });
    assert.equal(rewards.view.blockReward, BLOCK_REWARD.toString());
    assert.equal(rewards.view.proposerBonusBps, 500);
    assert.equal(rewards.view.validator?.commissionBps, 250);
    // Rewards compound: the validator holds more tokens than shares once blocks paid it.
    assert.ok(BigInt(rewards.view.validator!.tokens) > BigInt(rewards.view.validator!.shares));

    const operator = await caesar.account(validatorKey.address);
    assert.equal(operator.view.sequence, null, 'no public key, no sequence');
    assert.equal(operator.view.staking?.delegations.length, 1);
    assert.equal(operator.view.staking?.delegations[0]?.validator, toHex(validator));

    await assert.rejects(
      caesar.account(bob, { publicKey: ed25519RawPublicKey(treasury.privateKey) }),
      (error: unknown) =>
        error instanceof StoqError &&
        error.code === StoqErrorCode.INVALID_ARGUMENT &&
        error.detail['reason'] === 'key-mismatch',
    );

    // A transfer through the CLI moves the transaction counter; the supply gauge is the proven one.
    const appliedSeries = 'hypermesh_caesar_txs_total{type="transfer",outcome="applied"}';
    const before = await metric(metricsUrl, appliedSeries);
    const sent = await runCli([
      'wallet',
      'send',
      '--to',
      formatAddress(bob),
      '--amount',
      '1.5',
      '--fee',
      '0.001',
      '--key',
      ledger.treasuryKeyFile,
      '--cluster',
      layout.dir,
      '--wait',
    ]);
    assert.equal(sent.code, 0, sent.err + sent.out);
    const txHash = fromHex(/tx ([0-9a-f]{64})/.exec(sent.out)![1]!);
    /** The treasury's committed transactions, oldest first. */
    const treasurySent: Uint8Array[] = [txHash];
    const receipt = await committedReceipt(caesar, txHash);
    assert.equal(receipt.code, 0);
    assert.deepEqual(
      receipt.events.map((event) => [event.type, event.attributes['amount']]),
      [
        ['caesar/transfer', '1500000'],
        ['caesar/fee', '1000'],
      ],
    );
    const committedAt = receipt.height;
    await waitForCondition(
      running.driver,
      'commit',
      async () => (await metric(metricsUrl, appliedSeries)) > before,
      'the transfer counted',
      20_000,
    );
    assert.equal(await metric(metricsUrl, appliedSeries), before + 1);
    const gaugeHeight = await metric(metricsUrl, 'hypermesh_caesar_height');
    assert.ok(gaugeHeight >= committedAt);
    const provenSupply = (await caesar.params(gaugeHeight)).view.token.supply;
    // The gauge may have moved on by a block; compare with the state it names at scrape time
    // (both read from one scrape: a block committed between two scrapes mints a reward).
    const [supplyNow, heightNow] = await metrics(
      metricsUrl,
      'hypermesh_caesar_supply',
      'hypermesh_caesar_height',
    );
    assert.equal(supplyNow, Number((await caesar.params(heightNow)).view.token.supply));
    assert.ok(BigInt(provenSupply) > 1000n * 10n ** 6n, 'block rewards were minted');
    const ratio = await metric(metricsUrl, 'hypermesh_caesar_bonded_ratio');
    assert.ok(ratio > 0 && ratio < 1, `bonded ratio ${ratio}`);
    assert.equal(await metric(metricsUrl, 'hypermesh_caesar_slashing_events_total'), 0);

    const history = await caesar.history({ account: bob, limit: 10 });
    assert.deepEqual(
      history.receipts.map((entry) => toHex(entry.txHash)),
      [toHex(txHash)],
    );
    assert.equal(history.next, null);
    await assert.rejects(
      caesar.receipt(new Uint8Array(32)),
      (error: unknown) => error instanceof StoqError && error.code === StoqErrorCode.NOT_FOUND,
    );

    // submitTx: Caesar transactions go to admission, other modules' are refused here.
    const treasuryKey = ed25519RawPublicKey(treasury.privateKey);
    const nextSequence = async (): Promise<number> =>
      (await caesar.account(treasury.address, { publicKey: treasuryKey })).view.sequence!;
    assert.equal(await nextSequence(), 1);
    const build = (body: Uint8Array, sequence: number, module = 'caesar') =>
      buildTransaction({
        chainId: genesis.chainId,
        privateKey: treasury.privateKey,
        sequence,
        module,
        body,
        stampDifficulty: genesis.proof.work.stampDifficulty,
      });
    await assert.rejects(
      caesar.submitTx(build(new Uint8Array([0xa0]), 1, 'kv').bytes),
      (error: unknown) =>
        error instanceof StoqError &&
        error.code === StoqErrorCode.INVALID_ARGUMENT &&
        error.detail['reason'] === 'not-caesar',
    );
    const broke = await caesar.submitTx(
      build(encodeTransfer({ to: bob, amount: 10n ** 15n }), 1).bytes,
    );
    assert.equal(broke.ok, false);
    assert.equal(!broke.ok && broke.code, 'CAESAR_INSUFFICIENT_FUNDS');

    /** Waits, commit by commit, until `txHash` is the newest entry of the treasury's history. */
    const inHistory = (txHash: Uint8Array, what: string) =>
      waitForCondition(
        running.driver,
        'commit',
        async () =>
          (await caesar.history({ account: treasury.address, limit: 1 })).receipts.some(
            (entry) => toHex(entry.txHash) === toHex(txHash),
          ),
        what,
        20_000,
      );
    const submitAndWait = async (body: Uint8Array, sequence: number) => {
      const tx = build(body, sequence);
      const admitted = await caesar.submitTx(tx.bytes);
      assert.equal(admitted.ok, true, JSON.stringify(admitted));
      await inHistory(tx.txHash, 'the submitted transaction in the history');
      treasurySent.push(tx.txHash);
      const found = await committedReceipt(caesar, tx.txHash);
      assert.equal(found.code, 0, found.log);
      return found;
    };
    await submitAndWait(
      encodeStakingTx({ op: 'delegate', fee: 0n, amount: 3_000_000n, validator }),
      1,
    );
    await submitAndWait(
      encodeStakingTx({ op: 'unbond', fee: 0n, amount: 1_000_000n, validator }),
      2,
    );
    const account = await caesar.account(treasury.address, { publicKey: treasuryKey });
    assert.equal(account.view.sequence, 3);
    const staking = account.view.staking!;
    assert.equal(staking.delegations.length, 1);
    assert.ok(BigInt(staking.delegations[0]!.worth) >= 1_999_999n);
    assert.deepEqual(
      staking.unbondings.map((entry) => [entry.validator, entry.amount]),
      [[toHex(validator), '1000000']],
    );
    assert.equal(staking.unbonding, '1000000');
    assert.equal(
      BigInt(account.view.balance),
      ledger.treasuryAmount - 1_500_000n - 1_000n - 3_000_000n,
    );

    // Governance: a proposal and a vote, read back proven.
    const proposed = await submitAndWait(
      encodeGovTx({
        op: 'gov/submit-proposal',
        fee: 0n,
        title: 'longer epochs',
        changes: [{ name: 'epochBlocks', value: 200n }],
        deposit: 10_000_000n,
      }),
      3,
    );
    assert.deepEqual(
      proposed.events.map((event) => event.type),
      ['caesar/submit-proposal'],
    );
    await submitAndWait(
      encodeGovTx({ op: 'gov/vote', fee: 0n, proposal: 1, option: VoteOption.YES }),
      4,
    );
    const proposals = await caesar.proposals();
    assert.equal(proposals.view.count, 1);
    assert.deepEqual(proposals.view.active, [1]);
    const [first] = proposals.view.proposals;
    assert.equal(first?.title, 'longer epochs');
    assert.equal(first?.status, 'voting');
    assert.equal(first?.proposer, formatAddress(treasury.address));
    assert.deepEqual(first?.changes, [{ name: 'epochBlocks', value: '200' }]);
    assert.equal(proposals.view.next, null);
    const votes = await caesar.votes(1);
    assert.deepEqual(votes.view.votes, [{ voter: formatAddress(treasury.address), option: 'yes' }]);
    assert.equal(votes.view.proposal?.id, 1);
    assert.equal((await caesar.votes(7)).view.proposal, null);

    // A transfer refused in its block (admitted behind the sender's next transaction, which
    // alone is checked against the ledger at admission) is in the sender's history with its
    // code; the applied one before it is there once.
    const paid = build(encodeTransfer({ to: bob, amount: 1_000n }), 5);
    const tooMuch = build(encodeTransfer({ to: bob, amount: 10n ** 15n }), 6);
    for (const tx of [paid, tooMuch]) {
      const admitted = await caesar.submitTx(tx.bytes);
      assert.equal(admitted.ok, true, JSON.stringify(admitted));
    }
    await inHistory(tooMuch.txHash, 'the refused transfer in the history');
    treasurySent.push(paid.txHash, tooMuch.txHash);
    const latest = await caesar.history({ account: treasury.address, limit: 100 });
    const [refusedEntry, paidEntry] = latest.receipts;
    assert.equal(toHex(refusedEntry!.txHash), toHex(tooMuch.txHash));
    assert.notEqual(refusedEntry!.code, 0);
    assert.match(refusedEntry!.log, /^CAESAR_INSUFFICIENT_FUNDS: /);
    assert.deepEqual(refusedEntry!.events, []);
    assert.equal(toHex(paidEntry!.txHash), toHex(paid.txHash));
    assert.equal(paidEntry!.code, 0);
    const listed = latest.receipts.map((entry) => toHex(entry.txHash));
    assert.equal(new Set(listed).size, listed.length, 'no transaction twice');
    assert.equal((await committedReceipt(caesar, tooMuch.txHash)).code, refusedEntry!.code);
    // The recipient it would have paid does not see it.
    assert.ok(
      !(await caesar.history({ account: bob, limit: 100 })).receipts.some(
        (entry) => toHex(entry.txHash) === toHex(tooMuch.txHash),
      ),
    );

    // History paging: walked page by page (each `before` the previous page's `next`), at every
    // page size, it lists each of the treasury's transactions exactly once, newest first, and
    // the walk ends with `next: null`. paid and tooMuch, submitted together, usually share a
    // block: at limit 1 a page then ends inside it, so `before` (height, index) must order
    // within a block too.
    const newestFirst = treasurySent.map(toHex).reverse();
    assert.deepEqual(
      latest.receipts.map((entry) => toHex(entry.txHash)),
      newestFirst,
    );
    assert.equal(latest.next, null);
    for (const limit of [1, 2, 3]) {
      const walked: string[] = [];
      let cursor: { height: number; index: number } | undefined;
      for (let page = 0; ; page++) {
        assert.ok(page <= newestFirst.length, `limit ${limit}: the walk ends`);
        const answer = await caesar.history({
          account: treasury.address,
          limit,
          ...(cursor === undefined ? {} : { before: cursor }),
        });
        assert.ok(answer.receipts.length <= limit);
        walked.push(...answer.receipts.map((entry) => toHex(entry.txHash)));
        if (answer.next === null) break;
        assert.equal(answer.receipts.length, limit, 'only a full page has a next');
        cursor = answer.next;
      }
      assert.deepEqual(walked, newestFirst, `limit ${limit}: every entry once, newest first`);
    }
    const heights = latest.receipts.map((entry) => entry.height);
    assert.deepEqual(
      heights,
      [...heights].sort((a, b) => b - a),
      'newest first',
    );
  });
});
