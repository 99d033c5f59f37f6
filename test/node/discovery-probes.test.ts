import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  commandProbe,
  httpProbe,
  stoqPingProbe,
  tcpProbe,
  type StoqDial,
} from '../../src/node/discovery-probes.js';
import type { Session } from '../../src/stoq/index.js';

/** The four health probes against real loopback sockets and programs (and a stand-in dial). */

let server: http.Server;
let port: number;
let closedPort: number;

before(async () => {
  server = http.createServer((request, response) => {
    response.statusCode = request.url === '/ok' ? 204 : 503;
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  // A port that was free a moment ago and is closed now: connections are refused.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
});
after(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const signal = () => new AbortController().signal;

describe('health probes', () => {
  it('tcp: an accepted connection passes, a refused one fails with its code', async () => {
    assert.deepEqual(await tcpProbe('127.0.0.1', port, signal()), { ok: true });
    const refused = await tcpProbe('127.0.0.1', closedPort, signal());
    assert.equal(refused.ok, false);
    assert.match(!refused.ok ? refused.reason : '', /ECONNREFUSED/);
  });

  it('http: 2xx passes, anything else fails with the status', async () => {
    assert.deepEqual(await httpProbe(new URL(`http://127.0.0.1:${port}/ok`), signal()), {
      ok: true,
    });
    assert.deepEqual(await httpProbe(new URL(`http://127.0.0.1:${port}/down`), signal()), {
      ok: false,
      reason: 'HTTP 503',
    });
    const aborted = AbortSignal.abort();
    assert.equal((await httpProbe(new URL(`http://127.0.0.1:${port}/ok`), aborted)).ok, false);
  });

  it('command: exit code 0 passes, another code fails with it', async () => {
    assert.deepEqual(await commandProbe([process.execPath, '-e', 'process.exit(0)'], signal()), {
      ok: true,
    });
    assert.deepEqual(await commandProbe([process.execPath, '-e', 'process.exit(3)'], signal()), {
      ok: false,
      reason: 'exit code 3',
    });
    const missing = await commandProbe(['/nonexistent/program'], signal());
    assert.equal(missing.ok, false);
    assert.match(!missing.ok ? missing.reason : '', /ENOENT/);
  });

  it("command: the program does not see the node's environment beyond PATH, HOME and the locale", async () => {
    process.env.HM_TEST_KEY_PASSPHRASE = 'secret';
    try {
      // Exits 0 only when the variable is absent and PATH came through.
      const script =
        'process.exit(process.env.HM_TEST_KEY_PASSPHRASE === undefined && process.env.PATH !== undefined ? 0 : 7)';
      assert.deepEqual(await commandProbe([process.execPath, '-e', script], signal()), {
        ok: true,
      });
    } finally {
      delete process.env.HM_TEST_KEY_PASSPHRASE;
    }
  });

  it('stoq-ping: the authenticated peer must be the registered identity', async () => {
    const closed: string[] = [];
    const dialAs =
      (uri: string): StoqDial =>
      async (address) =>
        ({
          peer: { uri },
          connection: { close: (reason: string) => closed.push(`${address.port} ${reason}`) },
        }) as unknown as Session;
    const address = { host: '127.0.0.1', port: 9292 };
    const identity = 'spiffe://c/validator/node-1';
    assert.deepEqual(await stoqPingProbe(dialAs(identity), address, identity, signal()), {
      ok: true,
    });
    assert.deepEqual(
      await stoqPingProbe(dialAs('spiffe://c/validator/node-2'), address, identity, signal()),
      { ok: false, reason: `the peer is spiffe://c/validator/node-2, not ${identity}` },
    );
    assert.deepEqual(closed, ['9292 health check done', '9292 health check done']);
    const refusing: StoqDial = async () => {
      throw new Error('handshake failed');
    };
    assert.deepEqual(await stoqPingProbe(refusing, address, identity, signal()), {
      ok: false,
      reason: 'handshake failed',
    });
  });
});
