import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import { createMemoryNetwork } from '../../src/stoq/memory.js';
import { isStoqError } from '../helpers/stoq-error.js';

describe('memory transport network', () => {
  it('rejects a public key that is not 32 bytes', () => {
    const network = createMemoryNetwork();
    assert.throws(
      () => network.transport({ publicKey: new Uint8Array(31) }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
    assert.throws(
      () => network.transport({ streamWindow: 0 }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
  });

  it('binds explicit addresses once, and separate networks do not see each other', async () => {
    const network = createMemoryNetwork();
    const first = network.transport();
    const second = network.transport();
    const elsewhere = createMemoryNetwork().transport();
    try {
      const listener = await first.listen({ host: 'node-a', port: 9292 });
      assert.deepEqual(listener.address, { host: 'node-a', port: 9292 });
      await assert.rejects(
        second.listen({ host: 'node-a', port: 9292 }),
        isStoqError(StoqErrorCode.TRANSPORT_UNAVAILABLE),
      );
      await assert.rejects(
        elsewhere.dial({ host: 'node-a', port: 9292 }),
        isStoqError(StoqErrorCode.CONNECTION_REFUSED),
      );
      const connection = await second.dial({ host: 'node-a', port: 9292 });
      assert.equal(connection.peerKey, null, 'a transport without a key proves none');
    } finally {
      await Promise.all([first.close(), second.close(), elsewhere.close()]);
    }
  });

  it('stalls a writer at exactly the configured window and resumes as the reader reads', async () => {
    const network = createMemoryNetwork();
    const server = network.transport({ streamWindow: 1000 });
    const client = network.transport();
    try {
      const listener = await server.listen({ host: 'node-a', port: 0 });
      const outbound = await client.dial(listener.address);
      const inbound = await listener.accept();
      assert.ok(inbound);
      const stream = await outbound.openStream();
      const accepted = await inbound.acceptStream();
      assert.ok(accepted);
      await stream.write(new Uint8Array(600));
      let done = false;
      const stalled = stream.write(new Uint8Array(600)).then(() => {
        done = true;
      });
      // The window is exhausted after 1000 bytes; only a read can free it, and none happened.
      await Promise.resolve();
      assert.equal(done, false);
      assert.equal((await accepted.read())?.length, 600);
      await stalled;
      assert.equal((await accepted.read())?.length, 400);
      assert.equal((await accepted.read())?.length, 200);
    } finally {
      await Promise.all([client.close(), server.close()]);
    }
  });
});
