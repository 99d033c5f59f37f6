import { blockReceipts } from '../../src/consensus/application/tx-results.js';
import { Mempool } from '../../src/consensus/mempool.js';
import {
  createCaesarRpcClient,
  registerCaesarRpc,
  type CaesarRpcClient,
} from '../../src/faces/caesar-rpc.js';
import { accountHistoryPage, storedReceipt } from '../../src/node/tx-receipts.js';
import type { TestNode } from '../consensus/application/fixture.js';
import { Cluster } from '../consensus/net/net-fixture.js';
import { blockInput, openStakingNode } from '../caesar/staking-fixture.js';
import { nextBlock } from '../storage/chain-fixture.js';

/**
 * `hypermesh.caesar.v1` over the in-memory STOQ transport, served from a real Caesar
 * application and a real mempool over it, with the receipts stored with each block, as
 * caesar-service.ts wires them; `caesar` is a client-role caller's view of it.
 */
export interface CaesarRpcFixture {
  readonly app: TestNode;
  readonly mempool: Mempool;
  readonly caesar: CaesarRpcClient;
  /** Executes and stores the next block with `txs` and their receipts, as the driver does. */
  commitBlock(txs: readonly Uint8Array[]): void;
  close(): Promise<void>;
}

export async function openCaesarRpcFixture(
  genesis: Parameters<typeof openStakingNode>[0],
): Promise<CaesarRpcFixture> {
  const app = await openStakingNode(genesis);
  const mempool = new Mempool(app.app);
  const commitBlock = (txs: readonly Uint8Array[]): void => {
    const height = app.nextHeight();
    const result = app.app.executeBlock(blockInput(height, txs, {}));
    app.store.saveBlock({
      ...nextBlock(app.store, { stateChanges: result.changes }),
      receipts: blockReceipts(height, result.txResults),
    });
    app.app.committed(height, result);
    mempool.update(height, txs);
  };
  commitBlock([]);
  const cluster = await Cluster.create('memory', ['n1', { name: 'carol', role: 'client' }]);
  const server = await cluster.endpoint('n1');
  registerCaesarRpc(server.endpoint, {
    query: (request) => app.app.query(request),
    submit: (tx) => mempool.add(tx),
    receipt: (txHash) => storedReceipt(app.store, txHash),
    pending: (txHash) => mempool.has(txHash),
    history: (account, from, limit) => accountHistoryPage(app.store, account, from, limit),
  });
  const caller = await cluster.endpoint('carol', undefined, { n1: [server.address] });
  const caesar = createCaesarRpcClient({ endpoint: caller.endpoint, peer: 'n1' });
  return {
    app,
    mempool,
    caesar,
    commitBlock,
    close: async () => {
      await cluster.close();
      await app.close();
    },
  };
}
