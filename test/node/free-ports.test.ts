import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { findFreePorts, pickRange } from '../../src/node/free-ports.js';

/**
 * `cluster init` / `dev` pick their ports before the nodes bind them. Drawn from below the
 * ephemeral range, they cannot be handed meanwhile to another process's `bind(0)` (the race
 * that made a concurrent test's node fail with EADDRINUSE).
 */
describe('free ports', () => {
  it('picks below the ephemeral range, or lets the OS pick when there is no room', () => {
    assert.deepEqual(pickRange('32768\t60999\n'), { low: 10_000, high: 32_767 });
    assert.equal(pickRange('10500 60999'), null);
    assert.equal(pickRange(null), null);
    assert.equal(pickRange('garbage'), null);
  });

  const range = (() => {
    try {
      return pickRange(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'));
    } catch {
      return null;
    }
  })();

  it(
    'finds distinct ports, free for UDP and TCP, outside the ephemeral range',
    { skip: range === null },
    async () => {
      const ports = await findFreePorts('127.0.0.1', 8);
      assert.equal(new Set(ports).size, 8);
      for (const port of ports) {
        assert.ok(port >= range!.low && port <= range!.high, `${port} below the ephemeral range`);
      }
    },
  );

  it('skips a port that is taken', { skip: range === null }, async () => {
    const [taken] = await findFreePorts('127.0.0.1', 1);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(taken, '127.0.0.1', resolve));
    try {
      // The first draw is the taken port, then the random sequence moves on.
      const draws = [(taken! - range!.low) / (range!.high - range!.low + 1), 0.5, 0.25, 0.75];
      let next = 0;
      const random = () => draws[next++ % draws.length]! + 1e-9;
      const [port] = await findFreePorts('127.0.0.1', 1, random);
      assert.notEqual(port, taken);
      assert.ok(next >= 2, 'the taken port was tried first');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('free ports on an address this machine does not have', () => {
  it('reports the bind error itself, not "could not find free ports"', async () => {
    await assert.rejects(findFreePorts('192.0.2.77', 1), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'EADDRNOTAVAIL');
      return true;
    });
  });
});
