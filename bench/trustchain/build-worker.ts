/**
 * Worker thread of the issuance pre-builder (issuance.ts): for each transaction a fresh P-256
 * key and its CSR naming one SPIFFE ID under the sender's own account prefix
 * (`spiffe://<cluster>/account/<sender hex>/…`, which every account may request without a
 * grant; docs/ca.md), in a signed, stamped `ca` `request` transaction.
 */
import { generateKeyPairSync } from 'node:crypto';
import { toHex } from '../../src/crypto/bytes.js';
import { ed25519PrivateKeyFromSeed, ed25519RawPublicKey } from '../../src/crypto/ed25519.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import { CA_MODULE_NAME, caRequestBody } from '../../src/trustchain/ca-module/index.js';
import { postBuiltBatch } from '../consensus/build-batch.js';
import type { IssueParams } from './issuance.js';

const accounts = new Map<number, string>();

postBuiltBatch((job, sender, sequence) => {
  const { cluster, tag } = job.params as IssueParams;
  let account = accounts.get(sender.index);
  if (account === undefined) {
    account = toHex(ed25519RawPublicKey(ed25519PrivateKeyFromSeed(sender.seed)));
    accounts.set(sender.index, account);
  }
  const uri = `spiffe://${cluster}/account/${account}/${tag}-${sequence}`;
  const privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const csr = createCsr({ privateKey, uris: [uri] });
  return { module: CA_MODULE_NAME, body: caRequestBody({ profile: 'service', csr, uris: [uri] }) };
});
