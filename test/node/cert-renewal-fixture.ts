import { writeFile } from 'node:fs/promises';
import type { QueryRequest } from '../../src/consensus/app.js';
import type { MempoolAddResult } from '../../src/consensus/mempool.js';
import { toHex } from '../../src/crypto/bytes.js';
import { derToPem, parseCertificate } from '../../src/crypto/x509.js';
import { createLogger, type Logger } from '../../src/node/log.js';
import { createCsr } from '../../src/trustchain/ca/csr.js';
import { caRequestBody } from '../../src/trustchain/ca-module/index.js';
import { makeSender } from '../consensus/application/fixture.js';
import { CHAIN_ID } from '../trustchain/ca/fixtures.js';
import {
  GRANTED_ZONE,
  caTx,
  publication,
  publishTx,
  type CaFixture,
  type CaNode,
} from '../trustchain/ca-module/fixture.js';

/**
 * What the cert-renewal unit tests give `startCertRenewal` / `RenewalSender` besides the
 * certificate: a `ca` node driven block by block (test/trustchain/ca-module/fixture.ts) as the
 * committed state and query, and a mempool that is a map — `submit` runs the node's `checkTx`
 * and keeps what it admits in `pending`, which the test commits (or clears) itself.
 */
export function caNodeRenewalIo(
  node: CaNode,
  options: {
    /** Answered (once, instead of `checkTx`) to the first submission. */
    readonly refuseFirst?: MempoolAddResult;
  } = {},
) {
  const pending = new Map<string, Uint8Array>();
  let refusal = options.refuseFirst;
  return {
    pending,
    io: {
      chainId: CHAIN_ID,
      stampDifficulty: 4,
      state: node.node.store.state,
      query: (request: QueryRequest) => node.node.app.query(request),
      submit: (tx: Uint8Array): Promise<MempoolAddResult> => {
        if (refusal !== undefined) {
          const answer = refusal;
          refusal = undefined;
          return Promise.resolve(answer);
        }
        const checked = node.node.app.checkTx(tx);
        if (!checked.ok) return Promise.resolve(checked);
        pending.set(toHex(checked.txHash), tx);
        return Promise.resolve({ ok: true, txHash: checked.txHash, duplicate: false });
      },
      pending: (txHash: Uint8Array) => pending.has(toHex(txHash)),
    },
  };
}

/** A logger whose lines are kept, parsed, in `lines`. */
export function capturingLogger(level: 'debug' | 'info' = 'debug'): {
  readonly lines: Record<string, unknown>[];
  readonly logger: Logger;
} {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(
    {},
    (line) => void lines.push(JSON.parse(line) as Record<string, unknown>),
    level,
  );
  return { lines, logger };
}

/**
 * A certificate the operator had `node` issue for a fresh key (profile `service`, DNS name
 * `<label>.<GRANTED_ZONE>`, one hour), committed and published by val-a, written with val-a's
 * intermediate as the PEM chain `file`: what a node renewing a consensus-issued certificate
 * starts from.
 */
export async function issuedChainFile(
  fixture: CaFixture,
  node: CaNode,
  file: string,
  label: string,
) {
  const key = makeSender();
  const issued = node.block([
    caTx(
      fixture.operator,
      caRequestBody({
        profile: 'service',
        csr: createCsr({ privateKey: key.privateKey }),
        dnsNames: [`${label}.${GRANTED_ZONE}`],
        lifetimeSeconds: 3600,
      }),
    ),
  ]);
  const height = node.node.store.blocks.latestHeight() as number;
  const { tx } = await publication(fixture, node, height, 'val-a');
  node.block([publishTx(fixture, 'val-a', tx)]);
  const serial = node.state().issuance(issued.txResults[0]!.txHash)!.serial;
  const der = node.state().certificate(serial)!.der;
  const intermediate = fixture.ca.validators['val-a']!.issuer.certificate;
  await writeFile(file, derToPem(der) + derToPem(intermediate));
  return { key, serial, intermediate, leaf: parseCertificate(der) };
}
