import assert from 'node:assert/strict';
import type { BlockExecutionResult } from '../../../src/consensus/app.js';
import {
  DNS_ZONES_RESULT_CODES,
  createDnsZonesModule,
  dnsZonesInitialState,
} from '../../../src/trustchain/dns-zones/index.js';
import type {
  DnsZonesErrorCode,
  DnsZonesGenesis,
  ZoneParams,
} from '../../../src/trustchain/dns-zones/index.js';
import { openNode, tx } from '../../consensus/application/fixture.js';
import type { Sender, TestNode } from '../../consensus/application/fixture.js';

/** Zone parameters for `apex` administered by `admins`; `overrides` replace fields. */
export function zoneParams(
  apex: string,
  admins: readonly Uint8Array[],
  overrides: Partial<ZoneParams> = {},
): ZoneParams {
  return {
    apex,
    admins,
    policy: 'open',
    soa: {
      ttl: 3600,
      mname: `ns1.${apex}`,
      rname: `hostmaster.${apex}`,
      refresh: 3600,
      retry: 600,
      expire: 604800,
      minimum: 300,
    },
    nameservers: { ttl: 3600, hosts: [`ns1.${apex}`, `ns2.${apex}`] },
    ...overrides,
  };
}

/** A genesis with the cluster zone `hypermesh.` administered by `admins`. */
export function clusterGenesis(
  admins: readonly Uint8Array[],
  overrides: Partial<ZoneParams> = {},
): DnsZonesGenesis {
  return { zones: [zoneParams('hypermesh.', admins, overrides)] };
}

/** A node running the dns module (and nothing else) over a fresh store, with `genesis`. */
export function openDnsNode(genesis: DnsZonesGenesis): Promise<TestNode> {
  return openNode({
    modules: [createDnsZonesModule()],
    initialState: dnsZonesInitialState(genesis),
  });
}

/** A signed dns transaction from `sender` (its next sequence unless given). */
export function dnsTx(sender: Sender, body: Uint8Array, sequence?: number): Uint8Array {
  return tx(sender, body, { module: 'dns', ...(sequence === undefined ? {} : { sequence }) });
}

const decoder = new TextDecoder();
const onlySequences = (result: BlockExecutionResult) =>
  result.changes.every(({ key }) => decoder.decode(key.subarray(0, 5)) === 'acct/');

/** Runs one transaction in its own block; asserts it applied. */
export function applied(node: TestNode, sender: Sender, body: Uint8Array): BlockExecutionResult {
  const bytes = dnsTx(sender, body);
  const admitted = node.app.checkTx(bytes);
  assert.ok(admitted.ok, admitted.ok ? '' : `checkTx: ${admitted.code} ${admitted.message}`);
  const result = node.executeAndCommit([bytes]);
  assert.equal(result.txResults[0]!.code, 0, result.txResults[0]!.log);
  return result;
}

/**
 * Runs one transaction that must be refused with `code`: the mempool refuses it with the same
 * code, and in a block it is recorded as refused with nothing written but the sequence. Returns
 * the block's log of it.
 */
export function refused(
  node: TestNode,
  sender: Sender,
  body: Uint8Array,
  code: DnsZonesErrorCode,
): string {
  const bytes = dnsTx(sender, body);
  const admitted = node.app.checkTx(bytes);
  assert.equal(admitted.ok ? 'admitted' : admitted.code, code);
  const result = node.executeAndCommit([bytes]);
  assert.equal(result.txResults[0]!.code, DNS_ZONES_RESULT_CODES[code], result.txResults[0]!.log);
  assert.ok(result.txResults[0]!.log.startsWith(`${code}: `), result.txResults[0]!.log);
  assert.ok(onlySequences(result), 'a refused transaction writes nothing but its sequence');
  return result.txResults[0]!.log;
}
