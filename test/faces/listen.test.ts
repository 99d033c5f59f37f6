import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { listenKeepingErrors } from '../../src/faces/listen.js';

describe('listenKeepingErrors', () => {
  it('keeps an error listener once listening: an accept failure does not end the process', async () => {
    const server = http.createServer((_request, response) => response.end('ok'));
    const seen: Error[] = [];
    await listenKeepingErrors(server, 0, '127.0.0.1', (error) => seen.push(error));
    try {
      assert.equal(server.listenerCount('error'), 1);
      // What libuv reports when accept(2) fails for lack of file descriptors.
      const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' });
      assert.equal(server.emit('error', emfile), true);
      assert.deepEqual(seen, [emfile]);
      // Still serving.
      const { port } = server.address() as AddressInfo;
      const response = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(await response.text(), 'ok');
    } finally {
      server.close();
      await once(server, 'close');
    }
  });

  it('without onError, an accept failure is ignored', async () => {
    const server = http.createServer();
    await listenKeepingErrors(server, 0, '127.0.0.1');
    try {
      assert.doesNotThrow(() => server.emit('error', new Error('accept EMFILE')));
    } finally {
      server.close();
      await once(server, 'close');
    }
  });

  it('rejects with the listen error and leaves no listener behind', async () => {
    const first = http.createServer();
    await listenKeepingErrors(first, 0, '127.0.0.1');
    const { port } = first.address() as AddressInfo;
    const second = http.createServer();
    try {
      await assert.rejects(listenKeepingErrors(second, port, '127.0.0.1'), { code: 'EADDRINUSE' });
      assert.equal(second.listenerCount('error'), 0);
    } finally {
      first.close();
      await once(first, 'close');
    }
  });
});
