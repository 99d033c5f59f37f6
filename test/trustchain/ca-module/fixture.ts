import assert from 'node:assert/strict';
import type { BlockExecutionInput, BlockExecutionResult } from '../../../src/consensus/app.js';
import { validatorAddress } from '../../../src/consensus/validator-set.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { encodeTrustBundle } from '../../../src/trustchain/ca/bundle.js';
import { createDeterministicSigner } from '../../../src/trustchain/ca/certificate.js';
import {
  CaStateReader,
  buildPublication,
  caGenesisFromApp,
  caInitialState,
  createCaModule,
  encodeCaBody,
  type CaModuleConfig,
  type CaPublishTx,
  type CaGenesisJson,
} from '../../../src/trustchain/ca-module/index.js';
import {
  openNode,
  tx,
  makeSender,
  type Sender,
  type TestNode,
} from '../../consensus/application/fixture.js';
import {
  createDnsZonesModule,
  dnsZonesGenesisToJson,
  dnsZonesInitialState,
  type DnsZonesGenesis,
} from '../../../src/trustchain/dns-zones/index.js';
import { BLOCK_TIME, CHAIN_ID, createTestCa, type TestCa } from '../ca/fixtures.js';

/**
 * A `ca` module over fresh stores for tests: the test CA (validators val-a and val-b), their
 * genesis accounts, an operator account with a grant (and one whose grant has `requireDcv`), and helpers that execute blocks at chosen
 * times with a chosen proposer.
 */
export interface CaFixture {
  readonly ca: TestCa;
  readonly config: CaModuleConfig;
  /** Every validator of the test CA (val-a and val-b, and any other name `testCa` has). */
  readonly validators: Readonly<Record<'val-a' | 'val-b', Sender>> &
    Readonly<Record<string, Sender>>;
  readonly operator: Sender;
  /** An account with the operator's grant plus `requireDcv` (an ACME server's account). */
  readonly dcvOperator: Sender;
  /** A node at height 0; the genesis certificates' records are written at height 1 (`GENESIS_TIME`). */
  openCaNode(): Promise<CaNode>;
}

/** The genesis time the fixture's nodes write the genesis certificates' records with. */
export const GENESIS_TIME = BLOCK_TIME;

export interface CaNode {
  readonly node: TestNode;
  /** Executes and commits a block of `transactions` proposed by `proposer`. */
  block(transactions: readonly Uint8Array[], proposer?: 'val-a' | 'val-b'): BlockExecutionResult;
  input(transactions: readonly Uint8Array[], proposer?: 'val-a' | 'val-b'): BlockExecutionInput;
  /**
   * From the next block on, each block's `lastCommit` says `set` (validators with their powers,
   * all signed) committed the previous block, as consensus tells the modules; null: no
   * `lastCommit` (the default).
   */
  useValidatorSet(set: ReadonlyArray<{ publicKey: Uint8Array; power: number }> | null): void;
  state(): CaStateReader;
  close(): Promise<void>;
}

export const GRANTED_ZONE = 'example.com';

/**
 * `testCa`: reuse a test CA (same intermediates) instead of creating one. `options.dns`: the
 * genesis also has an `app.dns` section, and the nodes run the `dns` module before the `ca`
 * module (as src/node/validator-node.ts does).
 */
export async function createCaFixture(
  overrides: Partial<CaGenesisJson> = {},
  testCa?: TestCa,
  options: {
    readonly dns?: DnsZonesGenesis;
    /** Genesis voting powers by validator name (default 1 each). */
    readonly powers?: Readonly<Record<string, number>>;
  } = {},
): Promise<CaFixture> {
  const { dns } = options;
  const ca = testCa ?? (await createTestCa(['val-a', 'val-b']));
  const validators = {
    ...Object.fromEntries(Object.keys(ca.validators).map((name) => [name, makeSender()])),
    'val-a': makeSender(),
    'val-b': makeSender(),
  };
  const operator = makeSender();
  const dcvOperator = makeSender();
  const section: CaGenesisJson = {
    trustBundle: JSON.parse(encodeTrustBundle(ca.bundle)) as Record<string, unknown>,
    grants: [
      {
        account: toHex(operator.publicKey),
        profiles: ['service', 'client'],
        dnsZones: [GRANTED_ZONE],
        wildcards: true,
        ipRanges: ['127.0.0.0/8'],
      },
      {
        account: toHex(dcvOperator.publicKey),
        profiles: ['service', 'client'],
        dnsZones: [GRANTED_ZONE],
        wildcards: true,
        ipRanges: ['127.0.0.0/8'],
        requireDcv: true,
      },
    ],
    ...overrides,
  };
  const config = caGenesisFromApp(
    JSON.parse(
      JSON.stringify({
        ca: section,
        ...(dns === undefined ? {} : { dns: dnsZonesGenesisToJson(dns) }),
      }),
    ) as never,
    {
      chainId: CHAIN_ID,
      validators: Object.entries(validators).map(([name, sender]) => ({
        name,
        publicKey: sender.publicKey,
        power: options.powers?.[name] ?? 1,
      })),
    },
    ca.falcon,
  );
  assert.ok(config !== undefined);
  const openCaNode = async (): Promise<CaNode> => {
    const caModule = createCaModule(config, { falcon: ca.falcon });
    const node = await openNode(
      dns === undefined
        ? { modules: [caModule], initialState: caInitialState(config, GENESIS_TIME) }
        : {
            modules: [createDnsZonesModule(), caModule],
            initialState: [...dnsZonesInitialState(dns), ...caInitialState(config, GENESIS_TIME)],
          },
    );
    let validatorSet: ReadonlyArray<{ publicKey: Uint8Array; power: number }> | null = null;
    const input = (
      transactions: readonly Uint8Array[],
      proposer: 'val-a' | 'val-b' = 'val-a',
    ): BlockExecutionInput => {
      const height = node.nextHeight();
      const votes = (validatorSet ?? [])
        .map(({ publicKey, power }) => ({
          validator: validatorAddress(publicKey),
          power,
          signed: true,
        }))
        .sort((a, b) => (a.validator < b.validator ? -1 : 1));
      return {
        chainId: CHAIN_ID,
        height,
        time: BLOCK_TIME + height * 1000,
        proposer: validatorAddress(validators[proposer].publicKey),
        transactions,
        evidence: [],
        ...(validatorSet === null || height === 1
          ? {}
          : { lastCommit: { height: height - 1, votes } }),
      };
    };
    let view: CaStateReader | null = null;
    return {
      node,
      input,
      useValidatorSet: (set) => {
        validatorSet = set;
      },
      block: (transactions, proposer) => {
        const result = node.app.executeBlock(input(transactions, proposer));
        node.commit(result);
        return result;
      },
      state: () =>
        (view ??= new CaStateReader({
          get: (key) =>
            node.store.state.get(new Uint8Array([...new TextEncoder().encode('ca/'), ...key])),
        })),
      close: () => node.close(),
    };
  };
  return { ca, config, validators, operator, dcvOperator, openCaNode };
}

/** A `ca` transaction from `sender`, taking its next sequence. */
export function caTx(sender: Sender, body: Uint8Array): Uint8Array {
  return tx(sender, body, { module: 'ca' });
}

/** A `ca` transaction at the sender's next sequence without using it (for checkTx or a block not committed). */
export function caTry(sender: Sender, body: Uint8Array): Uint8Array {
  return tx(sender, body, { module: 'ca', sequence: sender.sequence });
}

/** The publication `issuer` builds for block `height` from `node`'s committed state. */
export async function publication(
  fixture: CaFixture,
  node: CaNode,
  height: number,
  issuerName: 'val-a' | 'val-b',
): Promise<{ tx: CaPublishTx; certificates: readonly Uint8Array[] }> {
  const issuer = fixture.config.issuers.find((candidate) => candidate.name === issuerName);
  assert.ok(issuer !== undefined);
  const { keys } = fixture.ca.validators[issuerName]!;
  return buildPublication(fixture.config, node.state(), height, issuer, {
    signer: createDeterministicSigner(keys.ecdsa.privateKey),
    falconSecretKey: keys.falcon.secretKey,
    falcon: fixture.ca.falcon,
  });
}

export function publishTx(
  fixture: CaFixture,
  issuerName: 'val-a' | 'val-b',
  body: CaPublishTx,
  options: { readonly commit?: boolean } = {},
): Uint8Array {
  const sender = fixture.validators[issuerName];
  return (options.commit === false ? caTry : caTx)(sender, encodeCaBody(body));
}

/** The result of a block's transaction `index`. */
export function resultOf(
  result: { readonly txResults: readonly { code: number; log: string }[] },
  index = 0,
): { code: number; log: string } {
  return result.txResults[index] as { code: number; log: string };
}

/** A transaction result refused by the `ca` module with `code`. */
export function assertRefused(result: { code: number; log: string }, code: string): void {
  assert.notEqual(result.code, 0, `expected ${code}`);
  assert.ok(result.log.startsWith(`${code}:`), result.log);
}
