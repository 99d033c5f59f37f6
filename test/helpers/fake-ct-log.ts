import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fromBase64, toBase64 } from '../../src/crypto/bytes.js';
import { inclusionPathFromLeafHashes, rootFromLeafHashes } from '../../src/crypto/merkle.js';

/**
 * A made-up RFC 6962 log on 127.0.0.1 that serves `get-sth` and `get-proof-by-hash` for the
 * tree of `leafHashes` (self-consistent: every proof verifies against its own `get-sth` root),
 * or the raw `sth` / `proof` bodies given (a string is sent as it is, anything else as JSON).
 * Its `tree_head_signature` is random bytes: nobody can check it.
 */
export interface FakeCtLog {
  readonly url: string;
  /** The root its `get-sth` announces. */
  readonly root: Uint8Array;
  close(): Promise<void>;
}

export async function startFakeCtLog(options: {
  readonly leafHashes: readonly Uint8Array[];
  readonly sth?: unknown;
  readonly proof?: unknown;
}): Promise<FakeCtLog> {
  const { leafHashes } = options;
  const root = rootFromLeafHashes(leafHashes);
  const sth = options.sth ?? {
    tree_size: leafHashes.length,
    timestamp: 1_767_268_800_000,
    sha256_root_hash: toBase64(root),
    tree_head_signature: toBase64(randomBytes(74)),
  };
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const send = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    if (url.pathname === '/ct/v1/get-sth') return send(200, sth);
    if (url.pathname === '/ct/v1/get-proof-by-hash') {
      if (options.proof !== undefined) return send(200, options.proof);
      const hash = Buffer.from(fromBase64(url.searchParams.get('hash') ?? ''));
      const size = Number(url.searchParams.get('tree_size'));
      const tree = leafHashes.slice(0, size);
      const index = tree.findIndex((leaf) => hash.equals(leaf));
      if (size > leafHashes.length) return send(400, { error_code: 'bad_request' });
      if (index < 0) return send(404, { error_code: 'not_found' });
      return send(200, {
        leaf_index: index,
        audit_path: inclusionPathFromLeafHashes(index, tree).map(toBase64),
      });
    }
    return send(404, { error_code: 'not_found' });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    root,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
