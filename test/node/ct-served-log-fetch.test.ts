import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { checkServedLog } from '../../src/node/cert-tools.js';
import { CliError } from '../../src/node/cli-error.js';
import { DEFAULT_LISTEN_HOST } from '../../src/node/config.js';
import type { GenesisDocument } from '../../src/consensus/genesis.js';
import type { VerifiedQuorumCheckpoint } from '../../src/trustchain/ca-module/index.js';

describe('ct verify --url: what a node serves is read within bounds', () => {
  const servers: Server[] = [];
  after(async () => {
    await Promise.all(
      servers.map((server) => new Promise((resolve) => server.close(() => resolve(undefined)))),
    );
  });

  /** A "node" whose /checkpoint is an endless stream of bytes; resolves its base URL. */
  async function endlessLog(sent: { bytes: number }): Promise<string> {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      const pump = (): void => {
        // Stops once the client has gone; bounded by the client's cap in any case.
        while (!response.destroyed && sent.bytes < 64 * 1024 * 1024) {
          sent.bytes += chunk.length;
          if (!response.write(chunk)) {
            response.once('drain', pump);
            return;
          }
        }
        response.end();
      };
      pump();
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, DEFAULT_LISTEN_HOST, resolve));
    const { port } = server.address() as AddressInfo;
    return `http://${DEFAULT_LISTEN_HOST}:${port}`;
  }

  it('refuses a checkpoint larger than a signed note may be, without reading it all', async () => {
    const sent = { bytes: 0 };
    const url = await endlessLog(sent);
    await assert.rejects(
      checkServedLog(url, {} as VerifiedQuorumCheckpoint, {} as GenesisDocument),
      (error: unknown) =>
        error instanceof CliError &&
        /\/checkpoint: the answer is larger than 262144 bytes/.test(error.message),
    );
    assert.ok(sent.bytes < 16 * 1024 * 1024, `the server got to send ${sent.bytes} bytes`);
  });
});
