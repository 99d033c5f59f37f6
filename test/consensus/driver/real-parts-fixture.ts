import { createApplication, stampOf } from '../../../src/consensus/application/index.js';
import type { BlockProofs } from '../../../src/consensus/driver/ports.js';
import { genesisHash, type GenesisDocument } from '../../../src/consensus/genesis.js';
import { Mempool } from '../../../src/consensus/mempool.js';
import { buildStoragePlotFor, createBlockProofs } from '../../../src/consensus/pos/index.js';
import { DEV_PROOF_PARAMS } from '../../../src/consensus/proof/params.js';
import type { StoragePlot } from '../../../src/consensus/proof/storage-plot.js';
import { createKvModule } from '../../../src/kv/index.js';
import {
  makeGenesisDocument,
  makeIdentities,
  TestCluster,
  type ValidatorIdentity,
} from './fixtures.js';

/** Validators with their storage plots, for clusters running the real consensus proofs. */
export interface ProvingValidators {
  readonly identities: ValidatorIdentity[];
  readonly plots: StoragePlot[];
}

export async function makeProvingValidators(count: number): Promise<ProvingValidators> {
  const identities = await makeIdentities(count);
  const plots = identities.map((identity) =>
    buildStoragePlotFor(DEV_PROOF_PARAMS.space, identity.publicKey),
  );
  return { identities, plots };
}

/**
 * An in-process cluster with the real application (the kv module), mempool and four-part
 * consensus proofs; `proofsOf` may replace a validator's proof builder (a forger's).
 */
export function realPartsCluster(
  { identities, plots }: ProvingValidators,
  proofsOf: (index: number, real: BlockProofs) => BlockProofs = (_index, real) => real,
): { cluster: TestCluster; genesis: GenesisDocument } {
  const genesis = makeGenesisDocument(
    identities,
    {},
    plots.map((plot) => plot.root),
  );
  const hash = genesisHash(genesis);
  const cluster = new TestCluster(identities, genesis, {
    app: (store) =>
      createApplication({
        chainId: genesis.chainId,
        state: store.state,
        modules: [createKvModule()],
        stampDifficulty: genesis.proof.work.stampDifficulty,
      }),
    mempool: (app) => new Mempool(app),
    proofs: (index) =>
      proofsOf(
        index,
        createBlockProofs({
          genesis,
          genesisHash: hash,
          stampOf,
          self: {
            privateKey: identities[index]!.privateKey,
            plot: plots[index]!,
            networkAddress: `stoq://127.0.0.1:${9300 + index}`,
          },
        }),
      ),
  });
  return { cluster, genesis };
}
