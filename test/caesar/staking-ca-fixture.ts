import type { BlockExecutionResult } from '../../src/consensus/app.js';
import {
  caesarInitialState,
  createCaesarModule,
  encodeStakingTx,
  type CaesarGenesis,
  type CreateValidator,
} from '../../src/caesar/index.js';
import {
  issueValidatorIntermediate,
  createValidatorCaRequest,
  loadRootSigningKeys,
} from '../../src/trustchain/ca/hierarchy.js';
import {
  caAddIntermediateBody,
  caInitialState,
  createCaModule,
} from '../../src/trustchain/ca-module/index.js';
import { openNode, tx, type TestNode } from '../consensus/application/fixture.js';
import { BLOCK_TIME, CEREMONY_TIME, PASSPHRASE } from '../trustchain/ca/fixtures.js';
import { GENESIS_TIME, type CaFixture } from '../trustchain/ca-module/fixture.js';
import { blockInput, type TestValidator } from './staking-fixture.js';

/**
 * A staking chain with the `ca` module beside Caesar, wired as a node wires them
 * (src/node/validator-node.ts `genesisApplication`): Caesar gets the genesis intermediates'
 * holders (the ca fixture's val-a and val-b) and reads the added intermediates from the real ca
 * module's state, which the governed procedure (`add-intermediate`, approvals) writes.
 */
export interface StakingCaNode {
  readonly node: TestNode;
  /** Executes and commits the next block at a time inside the test CA's intermediates. */
  block(transactions: readonly Uint8Array[]): BlockExecutionResult;
  close(): Promise<void>;
}

export async function openStakingCaNode(
  fixture: CaFixture,
  genesis: CaesarGenesis,
): Promise<StakingCaNode> {
  const node = await openNode({
    modules: [
      createCaesarModule({
        validatorIntermediates: {
          genesisHolders: fixture.config.issuers.map((issuer) => issuer.account),
        },
      }),
      createCaModule(fixture.config, { falcon: fixture.ca.falcon }),
    ],
    initialState: [...caesarInitialState(genesis), ...caInitialState(fixture.config, GENESIS_TIME)],
  });
  return {
    node,
    block: (transactions) => {
      const height = node.nextHeight();
      const result = node.app.executeBlock({
        ...blockInput(height, transactions, {}),
        time: BLOCK_TIME + height * 1000,
      });
      node.commit(result);
      return result;
    },
    close: () => node.close(),
  };
}

/**
 * The `add-intermediate` body for `validator` under `name`: an intermediate the test CA's root
 * issues and FALCON-endorses for the validator's node key, as `hypermesh ca intermediate issue`
 * does (src/node/ca-intermediate.ts).
 */
export async function addIntermediateBody(
  fixture: CaFixture,
  name: string,
  validator: TestValidator,
): Promise<{ readonly body: Uint8Array; readonly certificate: Uint8Array }> {
  const { ca } = fixture;
  const { request } = await createValidatorCaRequest({ name, falcon: ca.falcon });
  const root = await loadRootSigningKeys({
    bundle: ca.bundle,
    ecdsaKeyFile: ca.rootKeyFiles.ecdsa,
    falconKeyFile: ca.rootKeyFiles.falcon,
    passphrase: PASSPHRASE,
  });
  const issued = await issueValidatorIntermediate({
    cluster: ca.bundle.cluster,
    root,
    request,
    account: validator.sender.publicKey,
    notBefore: CEREMONY_TIME,
    falcon: ca.falcon,
  });
  return {
    body: caAddIntermediateBody({
      name,
      account: validator.sender.publicKey,
      certificate: issued.certificate,
      endorsement: issued.endorsement,
    }),
    certificate: issued.certificate,
  };
}

/** A `create-validator` from `validator`'s key with `bond`; `sequence` to reuse one. */
export function createValidatorTx(
  validator: TestValidator,
  bond: bigint,
  options: { readonly fee?: bigint; readonly sequence?: number } = {},
): Uint8Array {
  const body: CreateValidator = {
    op: 'create-validator',
    fee: options.fee ?? 0n,
    bond,
    pqKey: validator.pqKey,
    commission: 0,
    storageRoot: validator.storageRoot,
  };
  return tx(validator.sender, encodeStakingTx(body), {
    module: 'caesar',
    ...(options.sequence === undefined ? {} : { sequence: options.sequence }),
  });
}
