import { bytesEqual, fromHex } from '../../src/crypto/bytes.js';
import {
  caesarBalanceQuery,
  caesarFeePoolQuery,
  caesarParamsQuery,
  verifyCaesarBalance,
  verifyCaesarFeePool,
  verifyCaesarParams,
} from '../../src/caesar/client.js';
import type { QueryRequest, QueryResponse } from '../../src/consensus/app.js';
import { decodeBlock } from '../../src/consensus/wire.js';
import type { BenchCluster } from '../consensus/cluster.js';
import { forEachLimited, type LedgerBook } from './ledger-book.js';

/**
 * The end-of-run check of the ledger against the chain, at one committed height H of the
 * observer (node-1): every involved account's balance and the fee pool read with proven
 * queries at H (spread over the nodes), each proof checked against its answer's state root and
 * that root compared with block H's header (`appStateRoot`, from node-1's `getBlock`). Then:
 * balances + fee pool = the supply in `caesar/params` = the genesis supply, and every balance
 * and the fee pool equal what the committed transfers' results imply (LedgerBook).
 */
export interface LedgerCheck {
  readonly height: number;
  readonly accounts: number;
  readonly supply: bigint;
  readonly genesisSupply: bigint;
  readonly balancesSum: bigint;
  readonly feePool: bigint;
  readonly expectedFeePool: bigint;
  /** Accounts whose proven balance differs from the book's. */
  readonly mismatches: number;
  /** Answers whose state root was not block H's. */
  readonly rootMismatches: number;
  readonly conserved: boolean;
}

const QUERY_CONCURRENCY = 32;
const CALL_DEADLINE_MS = 15_000;

export async function checkLedger(cluster: BenchCluster, book: LedgerBook): Promise<LedgerCheck> {
  const names = cluster.names;
  const observer = names[0] as string;
  const status = await cluster.client(0, observer).status({ deadlineMs: CALL_DEADLINE_MS });
  const height = status.committedHeight;
  if (typeof height !== 'number' || height < 1) {
    throw new Error(`node-1 reports no committed height (${String(height)})`);
  }
  const block = decodeBlock(
    (await cluster.client(0, observer).getBlock(height, { deadlineMs: CALL_DEADLINE_MS })).block,
  );
  const root = block.header.appStateRoot;
  let rootMismatches = 0;
  const ask = async (request: QueryRequest, index: number): Promise<QueryResponse> => {
    const node = names[index % names.length] as string;
    const connection = index % cluster.connections;
    let response: QueryResponse;
    try {
      response = await cluster.client(connection, node).query(request, {
        deadlineMs: CALL_DEADLINE_MS,
      });
    } catch {
      // A node that has not committed H yet cannot answer at H; node-1 has.
      response = await cluster
        .client(connection, observer)
        .query(request, { deadlineMs: CALL_DEADLINE_MS });
    }
    if (!bytesEqual(response.stateRoot, root)) rootMismatches += 1;
    return response;
  };

  const params = verifyCaesarParams(await ask(caesarParamsQuery(height), 0));
  if (params === null) throw new Error(`the state at height ${height} has no caesar/params`);
  const feePool = verifyCaesarFeePool(await ask(caesarFeePoolQuery(height), 1));
  const accounts = book.accounts();
  let balancesSum = 0n;
  let mismatches = 0;
  await forEachLimited(accounts, QUERY_CONCURRENCY, async (hex, index) => {
    const address = fromHex(hex);
    const balance = verifyCaesarBalance(
      address,
      await ask(caesarBalanceQuery(address, height), index),
    );
    balancesSum += balance;
    if (balance !== book.expected(hex)) mismatches += 1;
  });
  return {
    height,
    accounts: accounts.length,
    supply: params.supply,
    genesisSupply: book.supply,
    balancesSum,
    feePool,
    expectedFeePool: book.feePool,
    mismatches,
    rootMismatches,
    conserved: balancesSum + feePool === params.supply && params.supply === book.supply,
  };
}
