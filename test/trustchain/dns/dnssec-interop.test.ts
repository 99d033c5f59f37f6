import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { p256PrivateKeyToPkcs8Pem } from '../../../src/crypto/p256.js';
import {
  MemoryZone,
  RR_TYPES,
  ZoneSet,
  ZoneSigner,
  bindTrustAnchor,
  dsFromDnskey,
  formatDnskey,
  generateSigningKey,
} from '../../../src/trustchain/dns/index.js';
import type {
  DnssecSigningKey,
  RecordInput,
  Zone,
  ZoneSignatures,
} from '../../../src/trustchain/dns/index.js';
import { withDeadline } from '../../helpers/wait.js';
import { OTHER_INPUT, ZONE_INPUT, records } from './fixture.js';
import { available, run, startLoopback } from './loopback.js';
import type { LoopbackServer } from './loopback.js';

/**
 * DNSSEC against validators and tools nobody here wrote: BIND's `delv` validates answers from a
 * signed zone served on loopback, given the zone's key as its trust anchor, and must refuse
 * altered, expired and wrongly anchored ones; Knot's `keymgr` computes the DNSKEY, key tag and
 * DS of the same private key.
 */

const CI = process.env.CI === 'true';
const delvPresent = (await run('delv', ['-v'])).code === 0;
const keymgrPresent = await available('keymgr');
// In CI the tools are installed by .ci/run, so a missing one is a failure, not a skip.
const skipDelv =
  !delvPresent && !CI ? 'delv is not installed (Debian package bind9-dnsutils)' : false;
const skipKeymgr = !keymgrPresent && !CI ? 'keymgr is not installed (Debian package knot)' : false;

const DAY = 86400 * 1000;

const SIGNED_INPUT: RecordInput[] = [
  ...ZONE_INPUT,
  { name: 'insecure.hypermesh.', type: 'NS', ttl: 3600, data: { host: 'ns.elsewhere.test.' } },
];

/** The zone with its RRSIG tails of some types altered in one byte of the signature. */
function tampered(zone: Zone, types: readonly number[]): Zone {
  const inner = zone.dnssec!;
  const dnssec: ZoneSignatures = {
    rrsig(set) {
      const tail = inner.rrsig(set);
      if (tail === undefined || !types.includes(set.type)) return tail;
      const copy = Uint8Array.from(tail);
      copy[copy.length - 7]! ^= 0x01;
      return copy;
    },
    covering: (key) => inner.covering(key),
  };
  return {
    apex: zone.apex,
    apexKey: zone.apexKey,
    soa: zone.soa,
    negativeSoa: zone.negativeSoa,
    hasDelegations: zone.hasDelegations,
    node: (key) => zone.node(key),
    dnssec,
  };
}

interface Served {
  readonly server: LoopbackServer;
  readonly key: DnssecSigningKey;
}

async function serve(
  key: DnssecSigningKey,
  clock: () => number,
  alter?: number[],
): Promise<Served> {
  const signer = new ZoneSigner({ apex: 'hypermesh.', key, clock });
  const zone = MemoryZone.build('hypermesh.', records(SIGNED_INPUT), { signer });
  const zones = new ZoneSet([
    alter === undefined ? zone : tampered(zone, alter),
    MemoryZone.build('other.test.', records(OTHER_INPUT)),
  ]);
  return { server: await startLoopback(zones), key };
}

interface Delv {
  readonly validated: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

describe('DNSSEC validation with delv', { skip: skipDelv }, () => {
  let dir: string;
  let good: Served;
  let anchor: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-dnssec-'));
    good = await serve(generateSigningKey(), Date.now);
    anchor = path.join(dir, 'anchor.conf');
    await writeFile(anchor, bindTrustAnchor('hypermesh.', good.key.dnskey));
  });
  after(async () => {
    await good.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function delv(
    port: number,
    name: string,
    type: string,
    anchorFile = anchor,
  ): Promise<Delv> {
    const result = await withDeadline(
      run('delv', [
        '@127.0.0.1',
        '-p',
        String(port),
        '-a',
        anchorFile,
        '+root=hypermesh',
        name,
        type,
      ]),
      30_000,
      `delv ${name} ${type}`,
    );
    return {
      validated: /^; (negative response, )?fully validated$/m.test(result.stdout),
      stdout: result.stdout,
      stderr: result.stderr,
    };
  }

  const cases: Array<[string, string, RegExp]> = [
    ['www.hypermesh.', 'A', /^www\.hypermesh\.\s+300\s+IN\s+A\s+192\.0\.2\.1$/m],
    ['hypermesh.', 'DNSKEY', /IN\s+DNSKEY\s+257 3 13 /],
    ['hypermesh.', 'MX', /IN\s+MX\s+10 mail\.hypermesh\.$/m],
    ['_stoq._udp.hypermesh.', 'SRV', /IN\s+SRV\s+1 5 9292 node1\.hypermesh\.$/m],
    ['nope.hypermesh.', 'A', /NXDOMAIN/],
    ['www.hypermesh.', 'TXT', /NXRRSET/],
    ['ent.hypermesh.', 'A', /NXRRSET/],
    ['x.y.wild.hypermesh.', 'A', /^x\.y\.wild\.hypermesh\.\s+120\s+IN\s+A\s+192\.0\.2\.80$/m],
    ['x.wild.hypermesh.', 'MX', /NXRRSET/],
    ['x.ent.wild.hypermesh.', 'A', /NXDOMAIN/],
    ['alias.hypermesh.', 'A', /^www\.hypermesh\.\s+300\s+IN\s+A\s+192\.0\.2\.1$/m],
    ['q.cn.hypermesh.', 'A', /^q\.cn\.hypermesh\.\s+120\s+IN\s+CNAME\s+www\.hypermesh\.$/m],
    ['dangling.hypermesh.', 'A', /NXDOMAIN/],
    ['sub.hypermesh.', 'DS', /IN\s+DS\s+12345 13 2 /],
    ['insecure.hypermesh.', 'DS', /NXRRSET/],
  ];
  for (const [name, type, expected] of cases) {
    it(`validates ${name} ${type}`, async () => {
      const result = await delv(good.server.port, name, type);
      assert.ok(result.validated, `${result.stdout}${result.stderr}`);
      assert.match(result.stdout, expected);
    });
  }

  it('fails on an altered RRSIG over an answer, and over a denial', async () => {
    const altered = await serve(good.key, Date.now, [RR_TYPES.A, RR_TYPES.NSEC]);
    try {
      const answer = await delv(altered.server.port, 'www.hypermesh.', 'A');
      assert.ok(!answer.validated, answer.stdout);
      assert.match(answer.stderr, /RRSIG failed to verify|no valid signature/);
      const denial = await delv(altered.server.port, 'nope.hypermesh.', 'A');
      assert.ok(!denial.validated, denial.stdout);
      // The DNSKEY RRset, signed untouched, still validates: the failures are the signatures.
      assert.ok((await delv(altered.server.port, 'hypermesh.', 'DNSKEY')).validated);
    } finally {
      await altered.server.close();
    }
  });

  it('fails with signatures expired or not yet valid', async () => {
    for (const offset of [-30 * DAY, 2 * DAY]) {
      const skewed = await serve(good.key, () => Date.now() + offset);
      try {
        const result = await delv(skewed.server.port, 'www.hypermesh.', 'A');
        assert.ok(!result.validated, `${offset}: ${result.stdout}`);
      } finally {
        await skewed.server.close();
      }
    }
  });

  it('fails with a trust anchor for another key', async () => {
    const wrong = path.join(dir, 'wrong.conf');
    await writeFile(wrong, bindTrustAnchor('hypermesh.', generateSigningKey().dnskey));
    const result = await delv(good.server.port, 'www.hypermesh.', 'A', wrong);
    assert.ok(!result.validated, result.stdout);
    assert.match(result.stderr, /broken trust chain|no valid signature/);
  });
});

describe('DNSKEY and DS agree with Knot keymgr', { skip: skipKeymgr }, () => {
  it('imports the same private key and prints the same DNSKEY, key tag and DS (SHA-256, SHA-384)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'hypermesh-keymgr-'));
    try {
      const key = generateSigningKey();
      const pem = path.join(dir, 'key.pem');
      await writeFile(pem, p256PrivateKeyToPkcs8Pem(key.privateKey));
      const kasp = path.join(dir, 'kasp');
      const keymgr = (
        ...args: string[]
      ): Promise<{ code: number; stdout: string; stderr: string }> =>
        withDeadline(
          run('keymgr', ['-D', kasp, 'hypermesh.', ...args]),
          20_000,
          `keymgr ${args[0]}`,
        );
      const imported = await keymgr('import-pem', pem, 'algorithm=13', 'ksk=yes', 'zsk=yes');
      assert.equal(imported.code, 0, imported.stderr);
      const id = imported.stdout.trim().split('\n')[0]!;
      const list = await keymgr('list');
      assert.match(
        list.stdout,
        new RegExp(`^${id}\\s+${key.keyTag}\\s+CSK\\s+ECDSAP256SHA256`, 'm'),
      );
      const dnskey = await keymgr('dnskey', id);
      const ours = formatDnskey('hypermesh.', key.dnskey).replace(' 3600 IN', '');
      assert.equal(dnskey.stdout.trim(), ours);
      const ds = await keymgr('ds', id);
      const expected = [2, 4].map((digestType) => {
        const d = dsFromDnskey('hypermesh.', key.dnskey, digestType);
        return `hypermesh. DS ${d.keyTag} 13 ${digestType} ${Buffer.from(d.digest).toString('hex')}`;
      });
      assert.deepEqual(
        ds.stdout.trim().toLowerCase().split('\n'),
        expected.map((l) => l.toLowerCase()),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
