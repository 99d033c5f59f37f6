import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CaesarGenesisError,
  CaesarGenesisErrorCode,
  CaesarStateError,
  MAX_AMOUNT,
  PARAMS_KEY,
  accountAddress,
  balanceKey,
  caesarGenesisToJson,
  caesarInitialState,
  caesarStateKey,
  checkCaesarGenesis,
  decodeStoredAmount,
  decodeTokenParams,
  ed25519Address,
  encodeStoredAmount,
  encodeTokenParams,
  formatAddress,
  parseAddress,
  parseCaesarGenesis,
} from '../../src/caesar/index.js';
import type { CaesarGenesis } from '../../src/caesar/index.js';
import { encodeCanonical } from '../../src/codec/cbor.js';
import { sha256 } from '../../src/crypto/hash.js';
import { ed25519RawPublicKey, generateEd25519KeyPair } from '../../src/crypto/ed25519.js';

const genesisCode = (code: CaesarGenesisErrorCode, name?: string) => (error: unknown) => {
  assert.ok(
    error instanceof CaesarGenesisError,
    `${name ?? ''}: expected a CaesarGenesisError, got ${String(error)}`,
  );
  assert.equal(error.code, code, `${name ?? ''}: ${error.message}`);
  return true;
};

const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);
const C = 'cc'.repeat(32);

const file = (overrides: Record<string, unknown> = {}, token: Record<string, unknown> = {}) => ({
  token: { name: 'Caesar', symbol: 'CSR', decimals: 6, supply: '1000', ...token },
  allocations: [
    { address: B, amount: '400' },
    { address: A, amount: '600' },
  ],
  ...overrides,
});

describe('caesar genesis', () => {
  it('parses a genesis file into bigints and sorted byte addresses, and writes it back', () => {
    const genesis = parseCaesarGenesis(JSON.parse(JSON.stringify(file())));
    assert.deepEqual(genesis, {
      token: { name: 'Caesar', symbol: 'CSR', decimals: 6, supply: 1000n },
      allocations: [
        { address: parseAddress(A), amount: 600n },
        { address: parseAddress(B), amount: 400n },
      ],
    });
    assert.deepEqual(caesarGenesisToJson(genesis), {
      token: { name: 'Caesar', symbol: 'CSR', decimals: 6, supply: '1000' },
      allocations: [
        { address: A, amount: '600' },
        { address: B, amount: '400' },
      ],
    });
    // The largest supply there is, held by one account.
    const max = parseCaesarGenesis(
      file(
        { allocations: [{ address: C, amount: MAX_AMOUNT.toString() }] },
        { supply: '340282366920938463463374607431768211455', decimals: 18 },
      ),
    );
    assert.equal(max.token.supply, MAX_AMOUNT);
    // No token at all is a consistent genesis too (issuance comes with the rewards work).
    assert.equal(parseCaesarGenesis(file({ allocations: [] }, { supply: '0' })).token.supply, 0n);
  });

  it('refuses allocations that do not sum to the supply, naming both sums', () => {
    assert.throws(
      () => parseCaesarGenesis(file({}, { supply: '1001' })),
      (error: unknown) =>
        genesisCode(CaesarGenesisErrorCode.SUPPLY_MISMATCH)(error) &&
        (error as Error).message ===
          'caesarGenesis: the allocations sum to 1000 base units, 1 short of the total supply of 1001',
    );
    assert.throws(
      () => parseCaesarGenesis(file({}, { supply: '999' })),
      /the allocations sum to 1000 base units, 1 over the total supply of 999/,
    );
    // The sum is exact even where a float would round: 2^60 + 1 + 2^60 is not 2^61.
    const big = (1n << 60n).toString();
    assert.throws(
      () =>
        parseCaesarGenesis(
          file(
            {
              allocations: [
                { address: A, amount: big },
                { address: B, amount: ((1n << 60n) + 1n).toString() },
              ],
            },
            { supply: (1n << 61n).toString() },
          ),
        ),
      genesisCode(CaesarGenesisErrorCode.SUPPLY_MISMATCH),
    );
  });

  it('refuses every bad field precisely', () => {
    const { INVALID, DUPLICATE_ALLOCATION } = CaesarGenesisErrorCode;
    const allocation = (amount: unknown, address: unknown = A) => ({
      allocations: [{ address, amount }],
    });
    const cases: [string, unknown, CaesarGenesisErrorCode, RegExp][] = [
      ['not an object', 'genesis', INVALID, /expected object/],
      ['a number amount', file(allocation(1000)), INVALID, /decimal string of base units/],
      ['a negative amount', file(allocation('-1000')), INVALID, /only the digits/],
      ['a fractional amount', file(allocation('999.5')), INVALID, /only the digits/],
      ['an exponent', file(allocation('1e3')), INVALID, /only the digits/],
      ['leading zeros', file(allocation('01000')), INVALID, /only the digits/],
      ['spaces', file(allocation(' 1000')), INVALID, /only the digits/],
      ['an empty amount', file(allocation('')), INVALID, /only the digits/],
      [
        'an amount of 2^128',
        file(allocation('340282366920938463463374607431768211456')),
        INVALID,
        /below 2\^128/,
      ],
      ['a 40-digit amount', file(allocation('1'.repeat(40))), INVALID, /below 2\^128/],
      [
        'a zero allocation',
        file({
          allocations: [
            { address: A, amount: '0' },
            { address: B, amount: '1000' },
          ],
        }),
        INVALID,
        /at least one base unit/,
      ],
      [
        'an upper-case address',
        file(allocation('1000', A.toUpperCase())),
        INVALID,
        /64 lowercase hex/,
      ],
      ['a short address', file(allocation('1000', 'aa')), INVALID, /64 lowercase hex/],
      ['decimals 19', file({}, { decimals: 19 }), INVALID, /decimals: expected at most 18/],
      ['fractional decimals', file({}, { decimals: 1.5 }), INVALID, /decimals/],
      ['a lower-case symbol', file({}, { symbol: 'csr' }), INVALID, /symbol/],
      ['a long symbol', file({}, { symbol: 'ABCDEFGHIJKLM' }), INVALID, /symbol/],
      ['an empty name', file({}, { name: '' }), INVALID, /name/],
      ['a non-ASCII name', file({}, { name: 'Cæsar' }), INVALID, /name/],
      ['a supply as a number', file({}, { supply: 1000 }), INVALID, /supply/],
      ['an unknown field', file({ mint: true }), INVALID, /unexpected key "mint"/],
      ['an unknown token field', file({}, { owner: A }), INVALID, /unexpected key "owner"/],
      [
        'an unknown allocation field',
        file({ allocations: [{ address: A, amount: '1000', note: 'x' }] }),
        INVALID,
        /note/,
      ],
      ['no allocations', { token: file().token }, INVALID, /allocations/],
      [
        'an address allocated twice',
        file({
          allocations: [
            { address: A, amount: '500' },
            { address: B, amount: '1' },
            { address: A, amount: '499' },
          ],
        }),
        DUPLICATE_ALLOCATION,
        new RegExp(`address ${A} is allocated twice \\(entries 0 and 2\\)`),
      ],
    ];
    for (const [name, input, code, message] of cases) {
      assert.throws(
        () => parseCaesarGenesis(input),
        (error: unknown) =>
          genesisCode(code, name)(error) && message.test((error as Error).message),
        name,
      );
    }
    // The issues list names the field path.
    assert.throws(
      () => parseCaesarGenesis(file(allocation('-5'))),
      (error: unknown) =>
        error instanceof CaesarGenesisError &&
        (error.detail['issues'] as { path: string }[])[0]!.path ===
          'caesarGenesis.allocations[0].amount',
    );
  });

  it('checks a genesis built in code the same way', () => {
    const good: CaesarGenesis = {
      token: { name: 'Caesar', symbol: 'CSR', decimals: 0, supply: 10n },
      allocations: [{ address: new Uint8Array(32), amount: 10n }],
    };
    assert.deepEqual(checkCaesarGenesis(good), good);
    const bad: [string, unknown, CaesarGenesisErrorCode][] = [
      [
        'a number supply',
        { ...good, token: { ...good.token, supply: 10 } },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'a negative amount',
        { ...good, allocations: [{ address: new Uint8Array(32), amount: -10n }] },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'a 2^128 supply',
        { ...good, token: { ...good.token, supply: MAX_AMOUNT + 1n } },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'a hex address',
        { ...good, allocations: [{ address: A, amount: 10n }] },
        CaesarGenesisErrorCode.INVALID,
      ],
      [
        'a mismatch',
        { ...good, token: { ...good.token, supply: 11n } },
        CaesarGenesisErrorCode.SUPPLY_MISMATCH,
      ],
    ];
    for (const [name, input, code] of bad) {
      assert.throws(
        () => checkCaesarGenesis(input as CaesarGenesis),
        genesisCode(code, name),
        name,
      );
      assert.throws(
        () => caesarInitialState(input as CaesarGenesis),
        genesisCode(code, name),
        name,
      );
    }
  });

  it('becomes the router initial state: parameters and one balance per allocation, in key order', () => {
    const genesis = parseCaesarGenesis(file());
    const entries = caesarInitialState(genesis);
    const text = (key: Uint8Array) => Buffer.from(key).toString('latin1');
    assert.deepEqual(
      entries.map((e) => text(e.key)),
      [
        text(caesarStateKey(balanceKey(parseAddress(A)!))),
        text(caesarStateKey(balanceKey(parseAddress(B)!))),
        'caesar/params',
      ],
    );
    assert.deepEqual(
      entries.map((e) => e.value),
      [Uint8Array.of(0x02, 0x58), Uint8Array.of(0x01, 0x90), encodeTokenParams(genesis.token)],
    );
    assert.deepEqual(caesarStateKey(PARAMS_KEY), new TextEncoder().encode('caesar/params'));
  });
});

describe('caesar token parameters and stored amounts', () => {
  it('parameters round-trip as canonical CBOR, the supply up to 2^128 - 1', () => {
    for (const supply of [0n, 1n, (1n << 64n) - 1n, 1n << 64n, MAX_AMOUNT]) {
      const params = { name: 'Caesar ~ test', symbol: 'C3', decimals: 18, supply };
      const encoded = encodeTokenParams(params);
      assert.deepEqual(decodeTokenParams(encoded), params);
      if (supply < 1n << 64n) {
        assert.deepEqual(
          encoded,
          encodeCanonical({ ...params, supply }),
          'the shared encoder agrees',
        );
      }
    }
  });

  it('refuses bytes that are not parameters with CaesarStateError', () => {
    const good = { name: 'Caesar', symbol: 'CSR', decimals: 6, supply: 5 };
    const cases = [
      new Uint8Array(0),
      encodeCanonical({ ...good, extra: 1 }),
      encodeCanonical({ name: 'Caesar', symbol: 'CSR', decimals: 6 }),
      encodeCanonical({ ...good, decimals: 19 }),
      encodeCanonical({ ...good, symbol: 'csr' }),
      encodeCanonical({ ...good, supply: -1 }),
      encodeCanonical(['Caesar', 'CSR', 6, 5]),
    ];
    for (const bytes of cases) assert.throws(() => decodeTokenParams(bytes), CaesarStateError);
  });

  it('stored amounts are minimal big-endian, 1 to 16 bytes; zero is never stored', () => {
    assert.deepEqual(encodeStoredAmount(1n), Uint8Array.of(1));
    assert.deepEqual(encodeStoredAmount(256n), Uint8Array.of(1, 0));
    assert.deepEqual(encodeStoredAmount(MAX_AMOUNT), new Uint8Array(16).fill(0xff));
    assert.equal(decodeStoredAmount(null), 0n);
    assert.equal(decodeStoredAmount(new Uint8Array(16).fill(0xff)), MAX_AMOUNT);
    for (const bad of [0n, -1n, MAX_AMOUNT + 1n]) {
      assert.throws(() => encodeStoredAmount(bad), CaesarStateError);
    }
    for (const bad of [new Uint8Array(0), Uint8Array.of(0, 1), new Uint8Array(17).fill(1)]) {
      assert.throws(() => decodeStoredAmount(bad), CaesarStateError);
    }
  });
});

describe('caesar addresses', () => {
  it('an address is SHA-256 of the raw Ed25519 public key', () => {
    const key = ed25519RawPublicKey(generateEd25519KeyPair().privateKey);
    assert.deepEqual(ed25519Address(key), sha256(key));
    assert.deepEqual(accountAddress({ kind: 'ed25519', publicKey: key }), sha256(key));
    assert.equal(formatAddress(ed25519Address(key)), Buffer.from(sha256(key)).toString('hex'));
    assert.deepEqual(parseAddress(formatAddress(ed25519Address(key))), sha256(key));
    assert.throws(() => ed25519Address(new Uint8Array(33)), RangeError);
    assert.equal(parseAddress('AA'.repeat(32)), undefined);
  });
});
