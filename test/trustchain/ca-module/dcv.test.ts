import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CborErrorCode, decodeCanonical, encodeCanonical } from '../../../src/codec/cbor.js';
import { tagPrefix } from '../../../src/consensus/proof/hashing.js';
import { validatorAddress } from '../../../src/consensus/validator-set.js';
import { concatBytes } from '../../../src/crypto/bytes.js';
import { ed25519Sign } from '../../../src/crypto/ed25519.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { createCsr } from '../../../src/trustchain/ca/csr.js';
import {
  CaModuleError,
  CaModuleErrorCode,
  DEFAULT_DCV_MAX_AGE_BLOCKS,
  MAX_DCV_ATTESTATIONS,
  MAX_DCV_ATTESTATION_BYTES,
  caRenewBody,
  caRequestBody,
  dcvIdentifier,
  dcvQuorum,
  dcvQuorumShortfall,
  dcvRequiredCount,
  decodeCaBody,
  decodeDcvAttestation,
  encodeCaBody,
  VOTING_POWERS_KEY,
  decodeVotingPowers,
  requesterFor,
  signDcvAttestation,
  verifyDcvAttestation,
  type DcvAttestationBody,
  type DcvMethod,
} from '../../../src/trustchain/ca-module/index.js';
import { makeSender, type Sender } from '../../consensus/application/fixture.js';
import { CHAIN_ID, CLUSTER, createTestCa, generateKey } from '../ca/fixtures.js';
import {
  GRANTED_ZONE,
  caTry,
  caTx,
  createCaFixture,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
} from './fixture.js';

const C = CaModuleErrorCode;

function attestationBody(
  validator: Sender,
  account: Uint8Array,
  identifier: string,
  height: number,
  overrides: Partial<DcvAttestationBody> = {},
): DcvAttestationBody {
  return {
    chainId: CHAIN_ID,
    account,
    identifier,
    wildcard: false,
    method: 'http-01',
    keyAuthorizationHash: sha256(new TextEncoder().encode(`token.${identifier}`)),
    height,
    ok: true,
    validator: validator.publicKey,
    ...overrides,
  };
}

function attest(
  validator: Sender,
  account: Uint8Array,
  identifier: string,
  height: number,
  overrides: Partial<DcvAttestationBody> = {},
): Uint8Array {
  return signDcvAttestation(
    attestationBody(validator, account, identifier, height, overrides),
    validator.privateKey,
  );
}

/** An attestation in the version 1 format (no `wildcard`), signed as version 1 signed it. */
function attestV1(
  validator: Sender,
  account: Uint8Array,
  identifier: string,
  height: number,
): Uint8Array {
  const body = {
    v: 1,
    chain: CHAIN_ID,
    account,
    id: identifier,
    method: 'http-01',
    kah: sha256(new TextEncoder().encode(`token.${identifier}`)),
    height,
    ok: true,
    validator: validator.publicKey,
  };
  const message = concatBytes(tagPrefix('hypermesh/ca/dcv-attestation'), encodeCanonical(body));
  return encodeCanonical({ body, sig: ed25519Sign(message, validator.privateKey) });
}

function throwsCode(fn: () => unknown, code: CaModuleErrorCode): void {
  assert.throws(fn, (error: unknown) => error instanceof CaModuleError && error.code === code);
}

describe('dcv attestations', () => {
  it('dcvRequiredCount: the smallest count above 2/3 of equal powers (the docs table)', () => {
    const table = [1, 2, 3, 3, 4, 5, 5, 6, 7, 7];
    assert.deepEqual(
      table.map((_, i) => dcvRequiredCount(i + 1)),
      table,
    );
    assert.throws(() => dcvRequiredCount(0), RangeError);
    assert.throws(() => dcvRequiredCount(1.5), RangeError);
  });

  it('dcvQuorum: more than 2/3 of voting power; outsiders add 0; each validator once', () => {
    const keys = Array.from({ length: 4 }, () => makeSender().publicKey);
    const electorate = (powers: readonly number[]) => {
      const map = new Map(keys.map((key, i) => [validatorAddress(key), powers[i] as number]));
      return { powers: map, totalPower: powers.reduce((a, b) => a + b, 0) };
    };
    const unequal = electorate([7, 1, 1, 1]);
    // A minority of validators with more than 2/3 of the power is enough …
    assert.equal(dcvQuorum(unequal, [keys[0]!]).reached, true);
    // … a majority with less is not.
    const majority = dcvQuorum(unequal, keys.slice(1));
    assert.deepEqual(majority, {
      reached: false,
      corroborating: 3,
      corroboratedPower: 3,
      totalPower: 10,
    });
    assert.equal(
      dcvQuorumShortfall(majority, 4),
      'validators holding 30% of voting power corroborated (3 of 4 holders), more than 66.7% needed',
    );
    // Exactly 2/3 is not more than 2/3.
    assert.equal(dcvQuorum(electorate([1, 1, 1, 0]), keys.slice(0, 2)).reached, false);
    assert.match(
      dcvQuorumShortfall(dcvQuorum(electorate([1, 1, 1, 0]), keys.slice(0, 2)), 3),
      /holding 66\.6% of voting power/,
    );
    // Someone outside the set, and a key listed twice, add nothing.
    const outsider = makeSender().publicKey;
    const counted = dcvQuorum(unequal, [keys[1]!, keys[1]!, outsider]);
    assert.equal(counted.corroboratedPower, 1);
    assert.equal(counted.corroborating, 2);
    // With equal powers the rule is dcvRequiredCount.
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 40 }), (n, k) => {
        const set = Array.from({ length: n }, () => makeSender().publicKey);
        const powers = new Map(set.map((key) => [validatorAddress(key), 5]));
        const quorum = dcvQuorum({ powers, totalPower: 5 * n }, set.slice(0, Math.min(k, n)));
        return quorum.reached === Math.min(k, n) >= dcvRequiredCount(n);
      }),
      { numRuns: 50 },
    );
  });

  it('dcvIdentifier: lowercase DNS names without a wildcard label, canonical IP addresses', () => {
    assert.equal(dcvIdentifier('dns', 'WWW.Example.COM'), 'dns:www.example.com');
    assert.equal(dcvIdentifier('dns', '*.example.com'), 'dns:example.com');
    assert.equal(dcvIdentifier('ip', '127.0.0.1'), 'ip:127.0.0.1');
    assert.equal(dcvIdentifier('ip', '2001:DB8:0:0:0:0:0:1'), 'ip:2001:db8::1');
    throwsCode(() => dcvIdentifier('ip', 'example.com'), C.DCV_INVALID);
    throwsCode(() => dcvIdentifier('dns', ''), C.DCV_INVALID);
  });

  it('sign → decode → verify; the signing key must be the validator', () => {
    const validator = makeSender();
    const account = makeSender().publicKey;
    const body = attestationBody(validator, account, 'dns:a.example.com', 7, { method: 'dns-01' });
    const bytes = signDcvAttestation(body, validator.privateKey);
    const decoded = decodeDcvAttestation(bytes);
    assert.deepEqual(decoded.body, body);
    assert.deepEqual(decoded.bytes, bytes);
    assert.equal(verifyDcvAttestation(decoded), true);
    throwsCode(() => signDcvAttestation(body, makeSender().privateKey), C.DCV_INVALID);
    // Another validator's signature over the same body does not verify for this validator.
    const other = makeSender();
    const foreign = decodeDcvAttestation(
      signDcvAttestation({ ...body, validator: other.publicKey }, other.privateKey),
    );
    assert.equal(
      verifyDcvAttestation({ ...foreign, body: { ...foreign.body, validator: body.validator } }),
      false,
    );
  });

  it('decode refuses malformed, non-canonical, oversized and non-canonical-identifier input', () => {
    const validator = makeSender();
    const account = makeSender().publicKey;
    const bytes = attest(validator, account, 'dns:a.example.com', 1);
    const outer = decodeCanonical(bytes) as { body: Record<string, unknown>; sig: Uint8Array };
    const variants: Uint8Array[] = [
      new Uint8Array(),
      Uint8Array.of(1, 2, 3),
      new Uint8Array([...bytes, 0]),
      new Uint8Array(2048),
      encodeCanonical({ ...outer, extra: 1 }),
      encodeCanonical({ body: { ...outer.body, v: 3 }, sig: outer.sig }),
      encodeCanonical({ body: { ...outer.body, wildcard: 1 }, sig: outer.sig }),
      // A wildcard attestation is dns-01 for a DNS name (RFC 8555 §7.1.3).
      encodeCanonical({ body: { ...outer.body, wildcard: true }, sig: outer.sig }),
      encodeCanonical({
        body: { ...outer.body, wildcard: true, method: 'dns-01', id: 'ip:127.0.0.1' },
        sig: outer.sig,
      }),
      encodeCanonical({ body: { ...outer.body, id: 'dns:A.example.com' }, sig: outer.sig }),
      encodeCanonical({ body: { ...outer.body, id: 'dns:*.example.com' }, sig: outer.sig }),
      encodeCanonical({ body: { ...outer.body, id: 'ip:127.000.0.1' }, sig: outer.sig }),
      encodeCanonical({ body: { ...outer.body, id: 'uri:x' }, sig: outer.sig }),
      encodeCanonical({ body: { ...outer.body, method: 'dns-02' }, sig: outer.sig }),
      encodeCanonical({ body: { ...outer.body, account: new Uint8Array(31) }, sig: outer.sig }),
      encodeCanonical({ body: outer.body, sig: outer.sig.subarray(1) }),
    ];
    for (const variant of variants) throwsCode(() => decodeDcvAttestation(variant), C.DCV_INVALID);
    throwsCode(
      () =>
        signDcvAttestation(
          { ...decodeDcvAttestation(bytes).body, wildcard: true },
          validator.privateKey,
        ),
      C.DCV_INVALID,
    );
  });

  it('decode refuses more data items than an attestation holds (25) before building them', () => {
    // 1 KiB of empty maps: 1,022 items in the largest encoding the decoder reads.
    const maps = new Uint8Array(MAX_DCV_ATTESTATION_BYTES).fill(0xa0);
    maps.set([0x99, 0x03, 0xfd]);
    // The attestation with one key more than its strict maps allow: 27 items.
    const outer = decodeCanonical(attest(makeSender(), makeSender().publicKey, 'dns:a.b', 1));
    const extraKey = encodeCanonical({ ...(outer as object), x: 0 });
    for (const bytes of [maps, extraKey]) {
      assert.throws(
        () => decodeDcvAttestation(bytes),
        (error: unknown) =>
          error instanceof CaModuleError &&
          error.code === C.DCV_INVALID &&
          error.detail.cbor === CborErrorCode.TOO_MANY_ITEMS,
      );
    }
  });

  it('a version 1 attestation (no wildcard flag), validly signed, is refused as such', () => {
    const validator = makeSender();
    const bytes = attestV1(validator, makeSender().publicKey, 'dns:a.example.com', 1);
    assert.throws(
      () => decodeDcvAttestation(bytes),
      (error: unknown) =>
        error instanceof CaModuleError &&
        error.code === C.DCV_INVALID &&
        error.detail.version === 1 &&
        /version 1 attestations are not accepted/.test(error.message),
    );
  });

  it('property: encode → decode round-trips; any single-byte change fails decoding or verification', () => {
    const validator = makeSender();
    const methods: DcvMethod[] = ['http-01', 'dns-01', 'tls-alpn-01'];
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const identifier = fc.oneof(
      fc
        .array(label, { minLength: 1, maxLength: 4 })
        .map((labels) => `dns:${labels.join('.')}.test`),
      fc.ipV4().map((ip) => dcvIdentifier('ip', ip)),
      fc.ipV6().map((ip) => dcvIdentifier('ip', ip)),
    );
    fc.assert(
      fc.property(
        fc.record({
          chainId: fc.string({ minLength: 1, maxLength: 64 }).filter((s) => s.length <= 64),
          account: fc.uint8Array({ minLength: 32, maxLength: 32 }),
          identifier,
          wildcard: fc.boolean(),
          method: fc.constantFrom(...methods),
          keyAuthorizationHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
          height: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
          ok: fc.boolean(),
        }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (fields, position, delta) => {
          // Only a DNS name validated by dns-01 may be a wildcard attestation.
          const wildcard =
            fields.wildcard && fields.method === 'dns-01' && fields.identifier.startsWith('dns:');
          const body: DcvAttestationBody = { ...fields, wildcard, validator: validator.publicKey };
          const bytes = signDcvAttestation(body, validator.privateKey);
          const decoded = decodeDcvAttestation(bytes);
          assert.deepEqual(decoded.body, body);
          assert.equal(verifyDcvAttestation(decoded), true);
          const changed = bytes.slice();
          const at = position % changed.length;
          changed[at] = ((changed[at] as number) + delta) & 0xff;
          let refused = false;
          try {
            refused = !verifyDcvAttestation(decodeDcvAttestation(changed));
          } catch (error) {
            refused = error instanceof CaModuleError && error.code === C.DCV_INVALID;
          }
          assert.ok(refused, `byte ${at} changed by ${delta} still verifies`);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('request body with dcv', () => {
  const input = () => ({
    profile: 'service' as const,
    csr: createCsr({ privateKey: generateKey('p256') }),
    dnsNames: [`a.${GRANTED_ZONE}`],
  });

  it('a request without attestations encodes as before (no dcv key)', () => {
    const request = input();
    const body = caRequestBody(request);
    assert.deepEqual(caRequestBody(request, undefined, []), body);
    const decoded = decodeCaBody(body);
    assert.equal(decoded.op, 'request');
    const req = decoded.op === 'request' ? decoded.request : new Uint8Array();
    assert.deepEqual(body, encodeCanonical({ op: 'request', req }));
    assert.equal(decoded.op === 'request' && decoded.dcv, undefined);
    assert.deepEqual(encodeCaBody({ op: 'request', request: req, dcv: [] }), body);
  });

  it('dcv round-trips; an empty list on the wire or too many are refused', () => {
    const request = input();
    const validator = makeSender();
    const attestations = [attest(validator, validator.publicKey, `dns:a.${GRANTED_ZONE}`, 1)];
    const body = caRequestBody(request, undefined, attestations);
    const decoded = decodeCaBody(body);
    assert.deepEqual(decoded.op === 'request' && decoded.dcv, attestations);
    assert.deepEqual(encodeCaBody(decoded), body);
    const req = decoded.op === 'request' ? decoded.request : new Uint8Array();
    throwsCode(
      () => decodeCaBody(encodeCanonical({ op: 'request', req, dcv: [] })),
      C.MALFORMED_BODY,
    );
    const many = new Array<Uint8Array>(MAX_DCV_ATTESTATIONS + 1).fill(attestations[0]!);
    throwsCode(
      () => decodeCaBody(encodeCanonical({ op: 'request', req, dcv: many })),
      C.MALFORMED_BODY,
    );
    throwsCode(() => caRequestBody(request, undefined, many), C.DCV_INVALID);
    throwsCode(
      () => decodeCaBody(encodeCanonical({ op: 'request', req, dcv: [new Uint8Array(2048)] })),
      C.MALFORMED_BODY,
    );
  });
});

describe('ca module: multi-perspective validation', () => {
  const MAX_AGE = 3;
  let fixture: CaFixture;
  let node: CaNode;
  let holders: Sender[];
  let q: number;

  before(async () => {
    fixture = await createCaFixture({ dcvMaxAgeBlocks: MAX_AGE });
    node = await fixture.openCaNode();
    holders = [fixture.validators['val-a'], fixture.validators['val-b']];
    q = dcvRequiredCount(holders.length);
    // A few blocks, so "too old" has room below the window.
    for (let i = 0; i < MAX_AGE + 2; i++) node.block([]);
  });

  after(async () => {
    await node?.close();
  });

  const committed = (): number => node.node.store.blocks.latestHeight() as number;

  function request(sender: Sender, names: readonly string[], dcv: readonly Uint8Array[]) {
    return caRequestBody(
      {
        profile: 'service',
        csr: createCsr({ privateKey: generateKey('p256') }),
        dnsNames: names.filter((name) => !/^[0-9.]+$/.test(name)),
        ipAddresses: names.filter((name) => /^[0-9.]+$/.test(name)),
      },
      undefined,
      dcv,
    );
  }

  function quorum(
    identifier: string,
    count = q,
    account = fixture.dcvOperator.publicKey,
    overrides: Partial<DcvAttestationBody> = {},
  ) {
    return holders
      .slice(0, count)
      .map((h) => attest(h, account, identifier, committed(), overrides));
  }

  const WILDCARD = { wildcard: true, method: 'dns-01' } as const;

  /** Refused with `code` at admission and in a block; the block writes no issuance. */
  function refusedEverywhere(body: Uint8Array, code: CaModuleErrorCode, sender?: Sender): string {
    const from = sender ?? fixture.dcvOperator;
    const admission = node.node.app.checkTx(caTry(from, body));
    assert.equal(!admission.ok && admission.code, code, JSON.stringify(admission));
    const result = node.block([caTx(from, body)]);
    const txResult = result.txResults[0]!;
    assert.ok(txResult.log.startsWith(`${code}:`), txResult.log);
    assert.equal(node.state().issuance(txResult.txHash), null);
    assert.equal(node.state().batch(committed()), null);
    return txResult.log;
  }

  function issued(body: Uint8Array, sender: Sender = fixture.dcvOperator): Uint8Array {
    const admission = node.node.app.checkTx(caTry(sender, body));
    assert.equal(admission.ok, true, JSON.stringify(admission));
    const result = node.block([caTx(sender, body)]);
    const txResult = result.txResults[0]!;
    assert.equal(txResult.code, 0, txResult.log);
    assert.notEqual(node.state().issuance(txResult.txHash), null);
    return txResult.txHash;
  }

  it('the genesis grant carries requireDcv; the section its window', () => {
    assert.equal(fixture.config.dcvMaxAgeBlocks, MAX_AGE);
    assert.equal(requesterFor(fixture.config, fixture.dcvOperator.publicKey).requireDcv, true);
    assert.equal(requesterFor(fixture.config, fixture.operator.publicKey).requireDcv, false);
  });

  it('q valid attestations per name → issued (DNS name, wildcard, IP address)', () => {
    const name = `www.${GRANTED_ZONE}`;
    issued(request(fixture.dcvOperator, [name], quorum(`dns:${name}`)));
    issued(
      request(
        fixture.dcvOperator,
        [`*.${GRANTED_ZONE}`, '127.0.0.5'],
        [...quorum(`dns:${GRANTED_ZONE}`, q, undefined, WILDCARD), ...quorum('ip:127.0.0.5')],
      ),
    );
    // Attestations at the edges of the window count.
    const edge = committed() + 1;
    issued(
      request(
        fixture.dcvOperator,
        [name],
        [
          attest(holders[0]!, fixture.dcvOperator.publicKey, `dns:${name}`, edge - MAX_AGE),
          attest(holders[1]!, fixture.dcvOperator.publicKey, `dns:${name}`, edge),
        ],
      ),
    );
  });

  it('q − 1 → CA_DCV_QUORUM at admission and execution, nothing written', () => {
    const name = `few.${GRANTED_ZONE}`;
    const log = refusedEverywhere(
      request(fixture.dcvOperator, [name], quorum(`dns:${name}`, q - 1)),
      C.DCV_QUORUM,
    );
    assert.match(
      log,
      new RegExp(
        `multi-perspective validation of ${name}: validators holding 50% of voting power corroborated \\(${q - 1} of ${holders.length} holders\\), more than 66\\.7% needed`,
      ),
    );
    // Every name needs its own quorum.
    const other = `other.${GRANTED_ZONE}`;
    refusedEverywhere(
      request(fixture.dcvOperator, [name, other], quorum(`dns:${name}`)),
      C.DCV_QUORUM,
    );
    refusedEverywhere(request(fixture.dcvOperator, [name], []), C.DCV_QUORUM);
  });

  it('attestations that must not count: forged, non-holder, duplicate, not ok, wrong account/chain/name, too old, future', () => {
    const name = `bad.${GRANTED_ZONE}`;
    const id = `dns:${name}`;
    const account = fixture.dcvOperator.publicKey;
    const [first, second] = holders as [Sender, Sender];
    // Built at the current height: each refusal below commits a block.
    const good = () => attest(first, account, id, committed());
    const forged = () => {
      const outer = decodeCanonical(attest(second, account, id, committed())) as {
        body: unknown;
        sig: Uint8Array;
      };
      const sig = outer.sig.slice();
      sig[0] = (sig[0] as number) ^ 1;
      return encodeCanonical({ body: outer.body, sig });
    };
    const stranger = makeSender();
    const bad: Record<string, () => Uint8Array> = {
      forged,
      'non-holder': () => attest(stranger, account, id, committed()),
      duplicate: () => attest(first, account, id, committed() - 1),
      'not ok': () => attest(second, account, id, committed(), { ok: false }),
      'another account': () => attest(second, makeSender().publicKey, id, committed()),
      'another chain': () => attest(second, account, id, committed(), { chainId: 'other-chain' }),
      'another name': () => attest(second, account, `dns:else.${GRANTED_ZONE}`, committed()),
      'too old': () => attest(second, account, id, committed() + 1 - MAX_AGE - 1),
      future: () => attest(second, account, id, committed() + 2),
    };
    for (const [label, make] of Object.entries(bad)) {
      const log = refusedEverywhere(
        request(fixture.dcvOperator, [name], [good(), make()]),
        C.DCV_QUORUM,
      );
      assert.match(log, new RegExp(`\\(1 of ${holders.length} holders\\)`), label);
    }
    // The same attestations next to a valid one of the other holder: issued.
    issued(
      request(
        fixture.dcvOperator,
        [name],
        [
          ...Object.values(bad).map((make) => make()),
          good(),
          attest(second, account, id, committed()),
        ],
      ),
    );
  });

  it('a wildcard needs wildcard dns-01 attestations; a plain name plain ones (RFC 8555 §7.1.3)', () => {
    const base = `wild.${GRANTED_ZONE}`;
    const id = `dns:${base}`;
    // A quorum of http-01 (or dns-01) validations of the name itself does not cover `*.name`.
    for (const method of ['http-01', 'dns-01', 'tls-alpn-01'] as const) {
      const log = refusedEverywhere(
        request(fixture.dcvOperator, [`*.${base}`], quorum(id, q, undefined, { method })),
        C.DCV_QUORUM,
      );
      assert.ok(log.includes(`multi-perspective validation of *.${base}: `), method);
    }
    // Wildcard attestations do not cover the name itself.
    refusedEverywhere(
      request(fixture.dcvOperator, [base], quorum(id, q, undefined, WILDCARD)),
      C.DCV_QUORUM,
    );
    // Both forms in one request need both quorums; each alone falls short.
    refusedEverywhere(
      request(fixture.dcvOperator, [base, `*.${base}`], quorum(id, q, undefined, WILDCARD)),
      C.DCV_QUORUM,
    );
    issued(request(fixture.dcvOperator, [`*.${base}`], quorum(id, q, undefined, WILDCARD)));
    issued(
      request(
        fixture.dcvOperator,
        [base, `*.${base}`],
        [...quorum(id), ...quorum(id, q, undefined, WILDCARD)],
      ),
    );
  });

  it('a version 1 attestation in a request → CA_DCV_INVALID, nothing written', () => {
    const name = `old.${GRANTED_ZONE}`;
    const old = holders.map((h) =>
      attestV1(h, fixture.dcvOperator.publicKey, `dns:${name}`, committed()),
    );
    const log = refusedEverywhere(request(fixture.dcvOperator, [name], old), C.DCV_INVALID);
    assert.match(log, /version 1 attestations are not accepted/);
  });

  it('malformed attestation bytes → CA_DCV_INVALID', () => {
    const name = `junk.${GRANTED_ZONE}`;
    const valid = quorum(`dns:${name}`);
    const log = refusedEverywhere(
      request(fixture.dcvOperator, [name], [...valid, Uint8Array.of(0xa0, 1)]),
      C.DCV_INVALID,
    );
    assert.match(log, /dcv\[2\]/);
    refusedEverywhere(
      request(fixture.dcvOperator, [name], [new Uint8Array([...valid[0]!, 0]), ...valid]),
      C.DCV_INVALID,
    );
  });

  it('a grant without requireDcv is unaffected; its attestations must still decode', () => {
    const { operator } = fixture;
    const name = `plain.${GRANTED_ZONE}`;
    issued(request(operator, [name], []), operator);
    issued(request(operator, [name], quorum(`dns:${name}`, 1, operator.publicKey)), operator);
    refusedEverywhere(request(operator, [name], [Uint8Array.of(1)]), C.DCV_INVALID, operator);
  });

  it('a requireDcv account needs none for SPIFFE IDs only, nor to renew an IP address', async () => {
    const { dcvOperator } = fixture;
    const own = `spiffe://${CLUSTER}/account/${Buffer.from(dcvOperator.publicKey).toString('hex')}/svc`;
    issued(
      caRequestBody({
        profile: 'client',
        csr: createCsr({ privateKey: generateKey('ed25519') }),
        uris: [own],
      }),
    );
    const address = '127.0.0.7';
    const txHash = issued(request(dcvOperator, [address], quorum(`ip:${address}`)));
    const h = committed();
    const { tx } = await publication(fixture, node, h, 'val-a');
    const published = node.block([publishTx(fixture, 'val-a', tx)]);
    assert.equal(published.txResults[0]!.code, 0, published.txResults[0]!.log);
    const serial = node.state().issuance(txHash)!.serial;
    issued(caRenewBody(serial));
  });

  it("a requireDcv account's renewal: only the account sends it, and a DNS name needs a new request", async () => {
    const { dcvOperator } = fixture;
    // An Ed25519 certificate key that could sign key-signed renewals under another grant.
    const certified = makeSender();
    const name = `renew.${GRANTED_ZONE}`;
    const body = caRequestBody(
      {
        profile: 'service',
        csr: createCsr({ privateKey: certified.privateKey }),
        dnsNames: [name],
        ipAddresses: ['127.0.0.8'],
      },
      undefined,
      [...quorum(`dns:${name}`), ...quorum('ip:127.0.0.8')],
    );
    const txHash = issued(body);
    const { tx } = await publication(fixture, node, committed(), 'val-a');
    const published = node.block([publishTx(fixture, 'val-a', tx)]);
    assert.equal(published.txResults[0]!.code, 0, published.txResults[0]!.log);
    const serial = node.state().issuance(txHash)!.serial;
    // The certificate's key may not spend the ACME server's shared rate window.
    const byKey = refusedEverywhere(caRenewBody(serial), C.NOT_AUTHORIZED, certified);
    assert.match(byKey, /requireDcv grant needs the requesting account/);
    // The account itself: its DNS name's CAA would go unchecked, so a new request is needed.
    const log = refusedEverywhere(caRenewBody(serial), C.DCV_STALE, dcvOperator);
    assert.ok(
      log.includes(`renewing ${name} would skip its CAA check: request a new certificate`),
      log,
    );
  });

  it('DEFAULT_DCV_MAX_AGE_BLOCKS is the section default', async () => {
    const plain = await createCaFixture();
    assert.equal(plain.config.dcvMaxAgeBlocks, DEFAULT_DCV_MAX_AGE_BLOCKS);
  });
});

describe('ca module: the DCV quorum is more than 2/3 of voting power', () => {
  const NAMES = ['val-a', 'val-b', 'val-c', 'val-d'] as const;
  let fixture: CaFixture;
  let node: CaNode;
  let holder: Record<(typeof NAMES)[number], Sender>;

  before(async () => {
    // Four holders; val-a alone holds 7 of the 10 units of genesis voting power.
    fixture = await createCaFixture({}, await createTestCa([...NAMES]), {
      powers: { 'val-a': 7, 'val-b': 1, 'val-c': 1, 'val-d': 1 },
    });
    node = await fixture.openCaNode();
    holder = Object.fromEntries(NAMES.map((name) => [name, fixture.validators[name]!])) as Record<
      (typeof NAMES)[number],
      Sender
    >;
    node.block([]);
  });

  after(async () => {
    await node?.close();
  });

  const committed = (): number => node.node.store.blocks.latestHeight() as number;

  function body(name: string, attesters: readonly Sender[]): Uint8Array {
    const account = fixture.dcvOperator.publicKey;
    return caRequestBody(
      { profile: 'service', csr: createCsr({ privateKey: generateKey('p256') }), dnsNames: [name] },
      undefined,
      attesters.map((validator) => attest(validator, account, `dns:${name}`, committed())),
    );
  }

  /** The admission answer and the block result (committed) of one request. */
  function submit(request: Uint8Array): { admission: string | true; block: string | true } {
    const admission = node.node.app.checkTx(caTry(fixture.dcvOperator, request));
    const result = node.block([caTx(fixture.dcvOperator, request)]).txResults[0]!;
    return {
      admission: admission.ok ? true : `${admission.code}: ${admission.message}`,
      block: result.code === 0 ? true : result.log,
    };
  }

  it('a majority of holders with less than 2/3 of the power is refused; a minority with more passes', () => {
    const majority = submit(
      body(`majority.${GRANTED_ZONE}`, [holder['val-b'], holder['val-c'], holder['val-d']]),
    );
    for (const outcome of [majority.admission, majority.block]) {
      assert.equal(
        outcome,
        `CA_DCV_QUORUM: multi-perspective validation of majority.${GRANTED_ZONE}: validators holding 30% of voting power corroborated (3 of 4 holders), more than 66.7% needed`,
      );
    }
    const minority = submit(body(`minority.${GRANTED_ZONE}`, [holder['val-a']]));
    assert.deepEqual(minority, { admission: true, block: true });
  });

  it('the set consensus reports (lastCommit) replaces the genesis powers; a holder outside it counts 0', () => {
    // From the next block on, consensus says val-a, val-b and val-c (power 1 each) are the set.
    node.useValidatorSet(
      (['val-a', 'val-b', 'val-c'] as const).map((name) => ({
        publicKey: holder[name].publicKey,
        power: 1,
      })),
    );
    const recorded = node.block([]);
    const stored = node.node.store.state.get(
      new Uint8Array([...new TextEncoder().encode('ca/'), ...VOTING_POWERS_KEY]),
    );
    assert.ok(stored !== null);
    assert.deepEqual(
      decodeVotingPowers(stored),
      new Map(
        (['val-a', 'val-b', 'val-c'] as const).map((n) => [
          validatorAddress(holder[n].publicKey),
          1,
        ]),
      ),
    );
    assert.ok(recorded.changes.length > 0);
    // The same set again: not rewritten.
    const again = node.block([]);
    const powersKey = `ca/${new TextDecoder().decode(VOTING_POWERS_KEY)}`;
    assert.ok(!again.changes.some((change) => new TextDecoder().decode(change.key) === powersKey));
    // val-a alone (1 of 3) is no longer enough; val-d holds an intermediate but no power.
    const alone = submit(body(`alone.${GRANTED_ZONE}`, [holder['val-a']]));
    assert.match(String(alone.admission), /^CA_DCV_QUORUM: .*holding 33\.3% of voting power/);
    assert.match(String(alone.block), /^CA_DCV_QUORUM: /);
    const withOutsider = submit(
      body(`outsider.${GRANTED_ZONE}`, [holder['val-a'], holder['val-b'], holder['val-d']]),
    );
    assert.match(
      String(withOutsider.admission),
      /holding 66\.6% of voting power corroborated \(3 of 4 holders\), more than 66\.7% needed/,
    );
    assert.match(String(withOutsider.block), /^CA_DCV_QUORUM: /);
    const inSet = submit(
      body(`members.${GRANTED_ZONE}`, [holder['val-a'], holder['val-b'], holder['val-c']]),
    );
    assert.deepEqual(inSet, { admission: true, block: true });
  });
});
