import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runDemo } from '../../src/node/demo.js';

/**
 * The README's main job end to end: node processes started from the built bin (dist/), real
 * QUIC / TLS, real authentication, RPCs between them and an operator client.
 */
let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-demo-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

for (const [transport, mode, host] of [
  ['quic', 'delegated', '127.0.0.1'],
  ['tls', 'strict', '::1'],
] as const) {
  describe(`demo over ${transport} (${mode}, ${host})`, () => {
    it('runs two authenticated nodes and an operator, then stops them', async () => {
      const lines: string[] = [];
      const code = await runDemo({
        dir,
        transport,
        mode,
        host,
        once: true,
        out: (line) => lines.push(line),
        interrupted: new Promise(() => undefined),
      });
      const text = lines.join('\n');
      assert.equal(code, 0, text);
      assert.match(text, /node-a → node-b {2}authenticated ping: [\d.]+ ms/);
      assert.match(
        text,
        /operator → node-a {2}info: spiffe:\/\/demo\/validator\/node-a, sees us as spiffe:\/\/demo\/client\/operator/,
      );
      assert.match(text, /operator → node-b {2}heartbeat stream: 3 messages/);
      assert.match(text, /gossip: PERMISSION_DENIED/);
      const endpoints = JSON.parse(await readFile(path.join(dir, 'demo.json'), 'utf8')) as {
        transport: string;
        nodes: Array<{ stoq: { host: string; port: number }; metrics: string }>;
      };
      assert.equal(endpoints.transport, transport);
      assert.equal(endpoints.nodes.length, 2);
      for (const node of endpoints.nodes) {
        assert.equal(node.stoq.host, host);
        assert.ok(node.stoq.port > 0, 'node reported its bound port');
      }
    });
  });
}
