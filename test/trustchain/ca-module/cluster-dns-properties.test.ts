import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ZoneSourceCaaResolver } from '../../../src/faces/acme/caa-resolver.js';
import { AcmeError } from '../../../src/faces/acme/errors.js';
import { caaSearchDomains, type CaaRecord } from '../../../src/trustchain/ca/caa.js';
import {
  CaaCnameChainError,
  ClusterDnsReader,
} from '../../../src/trustchain/ca-module/cluster-dns.js';
import type { RecordInput } from '../../../src/trustchain/dns/index.js';
import {
  ConsensusZones,
  dnsNameRegister,
  dnsRecordsSet,
  dnsZonesStateReader,
} from '../../../src/trustchain/dns-zones/index.js';
import { makeSender } from '../../consensus/application/fixture.js';
import { clusterGenesis, dnsTx, openDnsNode } from '../dns-zones/dns-zones-fixture.js';

/**
 * The `ca` module's Relevant CAA RRset (`ClusterDnsReader.relevantCaa`, read from `dns` state)
 * is the one the ACME face finds through the answer engine (`ZoneSourceCaaResolver` over the
 * zones the DNS servers compile from the same state, climbing as `checkCaa` does), for random
 * zone contents: wildcards with CAA or CNAME, empty non-terminals, registered names without
 * records, delegations with glue, CNAME chains. So the two cannot drift apart.
 */

const APEX = 'hypermesh.';
const NAMES = [
  'a.hypermesh.',
  '*.hypermesh.',
  'b.a.hypermesh.',
  '*.a.hypermesh.',
  'c.b.a.hypermesh.',
  'x.*.a.hypermesh.',
  'd.hypermesh.',
  '*.d.hypermesh.',
  'e.d.hypermesh.',
  'n.hypermesh.',
  'g.n.hypermesh.',
] as const;
/** Names a request may carry (no `*` inside), existing or not, and wildcard requests. */
const REQUESTS = [
  'hypermesh',
  'a.hypermesh',
  'b.a.hypermesh',
  'c.b.a.hypermesh',
  'q.hypermesh',
  'q.a.hypermesh',
  'q.b.a.hypermesh',
  'q.q.a.hypermesh',
  'd.hypermesh',
  'e.d.hypermesh',
  'q.e.d.hypermesh',
  'q.d.hypermesh',
  'n.hypermesh',
  'g.n.hypermesh',
  'q.n.hypermesh',
  '*.hypermesh',
  '*.a.hypermesh',
  '*.q.a.hypermesh',
  '*.b.a.hypermesh',
  '*.q.d.hypermesh',
];
const CAA_VALUES = ['hypermesh', 'other-ca.example', ';'] as const;
const CNAME_TARGETS = [...NAMES, APEX, 'q.a.hypermesh.', 'q.d.hypermesh.', 'out.example.'];

type Kind = 'A' | 'TXT' | 'CAA' | 'CNAME' | 'NS';
const contentArb = fc.record({
  registered: fc.boolean(),
  kinds: fc.uniqueArray(fc.constantFrom<Kind>('A', 'A', 'TXT', 'CAA', 'CAA', 'CNAME', 'NS'), {
    maxLength: 2,
  }),
  pick: fc.nat(),
});

function records(name: string, kind: Kind, pick: number): RecordInput[] {
  const one = <T>(values: readonly T[]): T => values[pick % values.length]!;
  switch (kind) {
    case 'A':
      return [{ name, type: 'A', ttl: 300, data: { address: '192.0.2.1' } }];
    case 'TXT':
      return [{ name, type: 'TXT', ttl: 300, data: { strings: ['x'] } }];
    case 'CAA':
      return [
        { name, type: 'CAA', ttl: 300, data: { flags: 0, tag: 'issue', value: one(CAA_VALUES) } },
        ...(pick % 2 === 0
          ? []
          : [
              {
                name,
                type: 'CAA',
                ttl: 300,
                data: { flags: 0, tag: 'issuewild', value: one([...CAA_VALUES].reverse()) },
              },
            ]),
      ];
    case 'CNAME':
      return [{ name, type: 'CNAME', ttl: 300, data: { target: one(CNAME_TARGETS) } }];
    case 'NS':
      return [{ name, type: 'NS', ttl: 300, data: { host: 'ns.example.' } }];
  }
}

type Found = { domain: string; records: string[] } | null;
type Relevant = Found | 'cname_chain';

function normalise(found: { domain: string; records: readonly CaaRecord[] } | null): Found {
  if (found === null) return null;
  return {
    domain: found.domain.replace(/\.$/, ''),
    records: found.records.map((r) => `${r.flags} ${r.tag} ${r.value}`).sort(),
  };
}

describe('ca module CAA = the answer engine for the same zone contents', () => {
  it('the Relevant RRset of every request name is the one the ACME face finds', async () => {
    let synthesised = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(contentArb, { minLength: NAMES.length + 1, maxLength: NAMES.length + 1 }),
        async (contents) => {
          const admin = makeSender();
          const node = await openDnsNode(clusterGenesis([admin.publicKey]));
          try {
            node.executeAndCommit([]);
            const names = [...NAMES, APEX];
            const registering = names.filter((name, i) => name !== APEX && contents[i]!.registered);
            node.executeAndCommit(registering.map((name) => dnsTx(admin, dnsNameRegister(name))));
            // One transaction per RRset: those the zone rules refuse (CNAME next to other
            // data, data below a delegation, …) leave the state as it was.
            node.executeAndCommit(
              names.flatMap((name, i) => {
                const { registered, kinds, pick } = contents[i]!;
                if (name !== APEX && !registered) return [];
                return kinds
                  .filter((kind) => !(name === APEX && (kind === 'CNAME' || kind === 'NS')))
                  .map((kind) => dnsTx(admin, dnsRecordsSet(records(name, kind, pick))));
              }),
            );
            const height = node.store.blocks.latestHeight()!;
            const reader = dnsZonesStateReader(node.store.state);
            const zones = ConsensusZones.load(reader, { height });
            assert.equal(zones.failures.size, 0, [...zones.failures.values()].join('; '));
            const resolver = new ZoneSourceCaaResolver(() => zones);
            for (const name of REQUESTS) {
              let module: Relevant;
              try {
                module = normalise(new ClusterDnsReader(reader).relevantCaa(name));
              } catch (error) {
                if (!(error instanceof CaaCnameChainError)) throw error;
                module = 'cname_chain';
              }
              // A CNAME loop (or an over-long chain) refuses in both: the module throws, the
              // face's resolver fails the lookup (`cname_loop`).
              let face: Relevant = null;
              try {
                for (const domain of caaSearchDomains(name)) {
                  const found = await resolver.lookupCaa(domain);
                  if (found.length > 0) {
                    face = normalise({ domain, records: found });
                    break;
                  }
                }
              } catch (error) {
                if (!(error instanceof AcmeError) || error.detail?.reason !== 'cname_loop') {
                  throw error;
                }
                face = 'cname_chain';
              }
              assert.deepEqual(module, face, `relevant CAA RRset of ${name}`);
              if (face !== null && face !== 'cname_chain' && !names.includes(`${face.domain}.`))
                synthesised++;
            }
          } finally {
            await node.close();
          }
        },
      ),
      { numRuns: 150 },
    );
    // The generator reaches the feature: records found at a name only synthesis gives them to.
    assert.ok(synthesised > 0, 'some Relevant RRsets were synthesised from a wildcard');
  });
});
