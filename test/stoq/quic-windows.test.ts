import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { generateEd25519KeyPair } from '../../src/crypto/ed25519.js';
import { StoqErrorCode } from '../../src/stoq/errors.js';
import {
  DEFAULT_QUIC_MAX_CONCURRENT_STREAMS,
  DEFAULT_QUIC_MAX_CONNECTION_DATA,
  DEFAULT_QUIC_MAX_STREAM_DATA,
  quinnConfigInit,
} from '../../src/stoq/quic/transport.js';
import { isStoqError } from './rpc-fixture.js';

/**
 * quinn's receive windows apply from the handshake on, so they are what a peer that has not
 * authenticated can make a listener buffer (docs/stoq.md, "QUIC windows"). These are the values
 * the binding is given; the transport contract checks that quinn enforces the stream window.
 */

const MiB = 1024 * 1024;

describe('QUIC receive windows', () => {
  it('hands quinn the documented defaults', () => {
    const init = quinnConfigInit({ privateKey: generateEd25519KeyPair().privateKey });
    assert.equal(init.maxStreamData, 2 * MiB);
    assert.equal(init.maxConnectionData, 4 * MiB);
    assert.equal(init.maxConcurrentStreamLimit, 256);
    assert.equal(init.maxStreamData, DEFAULT_QUIC_MAX_STREAM_DATA);
    assert.equal(init.maxConnectionData, DEFAULT_QUIC_MAX_CONNECTION_DATA);
    assert.equal(init.maxConcurrentStreamLimit, DEFAULT_QUIC_MAX_CONCURRENT_STREAMS);
  });

  it('bounds what one connection can hold unread to the connection window', () => {
    const init = quinnConfigInit({ privateKey: generateEd25519KeyPair().privateKey });
    const perConnection = Math.min(
      init.maxConnectionData,
      init.maxConcurrentStreamLimit * init.maxStreamData,
    );
    assert.equal(perConnection, 4 * MiB);
  });

  it('states the same bound in docs/stoq.md', async () => {
    const docs = await readFile(new URL('../../docs/stoq.md', import.meta.url), 'utf8');
    assert.match(docs, /`maxStreamData`, receive window per stream .*\| 2 MiB \|/);
    assert.match(docs, /`maxConnectionData`, receive window per connection .*\| 4 MiB \|/);
    assert.match(docs, /holds at most 4 MiB of received, unread stream\s+data/);
  });

  it('passes configured windows through and refuses nonsense', () => {
    const { privateKey } = generateEd25519KeyPair();
    const init = quinnConfigInit({ privateKey, maxStreamData: MiB, maxConnectionData: 3 * MiB });
    assert.equal(init.maxStreamData, MiB);
    assert.equal(init.maxConnectionData, 3 * MiB);
    assert.throws(
      () => quinnConfigInit({ privateKey, maxConnectionData: 0 }),
      isStoqError(StoqErrorCode.INVALID_ARGUMENT),
    );
  });
});
