import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  DriverRejection,
  readSignerRecord,
  type RejectionInfo,
} from '../../src/consensus/driver/index.js';
import { consensusWalPathFor } from '../../src/storage/index.js';
import { createLogger } from '../../src/node/log.js';
import { loadValidatorNodeConfig } from '../../src/node/node-config.js';
import {
  SIGNER_STATE_FILE,
  startValidatorNode,
  type ValidatorNode,
} from '../../src/node/validator-node.js';
import { startOneNodeCluster, type OneNodeCluster } from '../helpers/one-node-cluster.js';
import { waitForCondition } from '../helpers/wait.js';

/**
 * A validator whose data directory keeps its store but lost `signer-state.json` and the
 * consensus WAL (what a restore from a `store.backup` snapshot leaves): `node start` refuses,
 * and `consensus.signerStateMissing: { waitHeights }` starts it without signing up to the fence.
 */
let cluster: OneNodeCluster | undefined;
let restarted: ValidatorNode | undefined;
after(async () => {
  await restarted?.stop();
  await cluster?.node.stop();
  if (cluster !== undefined) await rm(cluster.root, { recursive: true, force: true });
});

describe('a validator node without its signer state', () => {
  it('refuses to start, and with waitHeights starts but signs nothing up to the fence', async () => {
    cluster = await startOneNodeCluster('hypermesh-signer-missing-');
    const { node } = cluster;
    const config = node.config;
    const signerPath = path.join(config.dataDir, SIGNER_STATE_FILE);
    const walPath = consensusWalPathFor(path.join(config.dataDir, 'store.sqlite'));
    assert.ok(existsSync(signerPath));
    assert.ok(existsSync(walPath), `the consensus WAL is at ${walPath}`);
    await node.stop();
    const stored = node.driver.status().committedHeight;
    assert.ok(stored >= 1);
    await rm(signerPath);
    await rm(walPath);

    const logger = createLogger({ node: 'node-1' }, () => undefined, 'error');
    await assert.rejects(startValidatorNode(config, logger), (error: Error) => {
      assert.match(error.message, /cannot start consensus: /);
      assert.match(error.message, new RegExp(`no signer state at ${signerPath}`));
      assert.match(error.message, /waitHeights/);
      return true;
    });
    assert.equal(existsSync(signerPath), false, 'no signer record written');
    assert.equal(existsSync(walPath), false, 'no WAL written');

    const configFile = path.join(cluster.dir, 'node-1', 'config.json');
    const json = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    const consensus = (json['consensus'] ?? {}) as Record<string, unknown>;
    await writeFile(
      configFile,
      JSON.stringify({
        ...json,
        consensus: { ...consensus, signerStateMissing: { waitHeights: 2 } },
      }),
    );
    const waiting = await loadValidatorNodeConfig(configFile, {});
    restarted = await startValidatorNode(waiting, logger);
    const fenceHeight = stored + 2;
    assert.deepEqual(await readSignerRecord(signerPath, restarted.id), {
      kind: 'fence',
      fenceHeight,
    });
    // The only validator: it must sign for the chain to move, and it refuses to.
    const refusals: RejectionInfo[] = [];
    restarted.driver.on('rejected', (info) => refusals.push(info));
    await waitForCondition(
      restarted.driver,
      'rejected',
      () => refusals.some((info) => info.reason === DriverRejection.SIGN_REFUSED),
      'the fenced validator refuses to sign',
      30_000,
    );
    const status = restarted.driver.status();
    assert.equal(status.committedHeight, stored);
    assert.equal(status.signer?.signed, 0);
    assert.ok((status.signer?.refused ?? 0) >= 1);
  });
});
