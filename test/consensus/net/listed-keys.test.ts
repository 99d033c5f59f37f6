import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ConsensusNetworkError,
  ConsensusNetworkErrorCode,
} from '../../../src/consensus/net/index.js';
import { StoqErrorCode } from '../../../src/stoq/errors.js';
import { Cluster, until } from './net-fixture.js';

/**
 * A listed peer with a configured key (the node passes its genesis validators' keys): a
 * certificate with that peer's name but another key is not that peer, whichever side opens the
 * stream — otherwise anyone holding such a certificate could replace the real peer's stream.
 */

let cluster: Cluster;

before(async () => {
  cluster = await Cluster.create('memory', ['a', 'b', 'm']);
});

after(async () => {
  await cluster.close();
});

const keyOf = (name: string): Uint8Array => cluster.identity(name).transportKey.publicKey;

describe('listed consensus peers with a configured key', { timeout: 20_000 }, () => {
  it('connects when the key matches', async () => {
    const bEndpoint = await cluster.endpoint('b');
    const aEndpoint = await cluster.endpoint('a');
    const b = cluster.network(bEndpoint, [{ ...aEndpoint, publicKey: keyOf('a') }]);
    const a = cluster.network(aEndpoint, [{ ...bEndpoint, publicKey: keyOf('b') }]);
    await until(
      () => a.network.peers().includes('b') && b.network.peers().includes('a'),
      'a and b to connect',
    );
    await a.network.close();
    await b.network.close();
    await aEndpoint.stop();
    await bEndpoint.stop();
  });

  /**
   * a (sorting first) opens the stream to m; `aKnowsM`/`mKnowsA` are the keys each side is
   * configured with for the other. A wrong one ends in a refusal a logs with `code`.
   */
  async function refused(
    keys: { aKnowsM?: Uint8Array; mKnowsA?: Uint8Array },
    code: StoqErrorCode,
  ): Promise<void> {
    const mEndpoint = await cluster.endpoint('m');
    const aEndpoint = await cluster.endpoint('a');
    const m = cluster.network(mEndpoint, [{ ...aEndpoint, publicKey: keys.mKnowsA }]);
    const a = cluster.network(aEndpoint, [{ ...mEndpoint, publicKey: keys.aKnowsM }]);
    await until(
      () =>
        a.logger.lines.some(
          (line) =>
            line.message === 'cannot open gossip stream' &&
            line.fields.peer === 'm' &&
            line.fields.code === code,
        ),
      `a's stream to m to be refused with ${code}`,
    );
    assert.deepEqual(a.network.peers(), []);
    assert.deepEqual(m.network.peers(), []);
    await a.network.close();
    await m.network.close();
    await aEndpoint.stop();
    await mEndpoint.stop();
  }

  it('does not dial through to a peer whose certificate carries another key', async () => {
    // a expects m to hold b's key: its own dial check refuses m.
    await refused({ aKnowsM: keyOf('b') }, StoqErrorCode.UNAUTHENTICATED);
  });

  it('refuses the stream of a peer whose certificate carries another key', async () => {
    // m expects a to hold b's key: it refuses the stream a opens.
    await refused({ mKnowsA: keyOf('b') }, StoqErrorCode.PERMISSION_DENIED);
  });

  it('refuses a configured key that is not 32 bytes', async () => {
    const aEndpoint = await cluster.endpoint('a');
    const bEndpoint = await cluster.endpoint('b');
    assert.throws(
      () => cluster.network(aEndpoint, [{ ...bEndpoint, publicKey: new Uint8Array(31) }]),
      (error: unknown) =>
        error instanceof ConsensusNetworkError &&
        error.code === ConsensusNetworkErrorCode.INVALID_OPTIONS &&
        /publicKey must be a 32-byte Ed25519 key/.test(error.message),
    );
    await aEndpoint.stop();
    await bEndpoint.stop();
  });
});
