import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The TrustChain CA's metrics (docs/ca.md, "Metrics"), on the registry the node serves at
 * /metrics. ca-service.ts updates them after each committed block from the block's `ca`
 * transactions, their stored receipts and the committed `ca` state; the CT log size is read at
 * scrape time; admission refusals of the RPC's issue/renew/revoke are counted as they happen.
 */
export type CaIssuanceOutcome = 'accepted' | 'refused' | 'published';
export type CtProofKind = 'sth' | 'inclusion' | 'consistency';

export interface CaMetrics {
  /** Request/renew transactions committed (accepted or refused) and certificates published. */
  issuance(outcome: CaIssuanceOutcome, count?: number): void;
  /** Request commit → publication commit, in block time. */
  latency(seconds: number): void;
  proofRequest(kind: CtProofKind): void;
  /** A committed revocation with its RFC 5280 reason name. */
  revocation(reason: string): void;
  /**
   * An `issue`, `renew` or `revoke` transaction refused at admission (the RPC answered
   * `accepted: false`), by its code: the module's `CA_*` code from `checkTx`, or the mempool's.
   */
  refused(code: string): void;
}

export function createCaMetrics(registry: Registry, logSize: () => number): CaMetrics {
  const registers = [registry];
  const issuance = new Counter({
    name: 'hypermesh_ca_issuance_total',
    help: 'Certificate issuances: request/renew transactions committed (accepted, refused) and certificates published',
    labelNames: ['outcome'],
    registers,
  });
  const latency = new Histogram({
    name: 'hypermesh_ca_issuance_latency_seconds',
    help: 'From the block committing a certificate request to the block publishing it, in block time',
    buckets: [0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300],
    registers,
  });
  new Gauge({
    name: 'hypermesh_ct_log_size',
    help: "Entries in the node's certificate transparency log",
    registers,
    collect() {
      this.set(logSize());
    },
  });
  const proofs = new Counter({
    name: 'hypermesh_ct_proof_requests_total',
    help: 'Transparency log reads over STOQ RPC (sth, inclusion, consistency)',
    labelNames: ['kind'],
    registers,
  });
  const revocations = new Counter({
    name: 'hypermesh_ca_revocations_total',
    help: 'Committed certificate revocations by RFC 5280 reason',
    labelNames: ['reason'],
    registers,
  });
  const refusals = new Counter({
    name: 'hypermesh_ca_refused_total',
    help: 'issue/renew/revoke RPC calls refused at admission, by refusal code (nothing was written)',
    labelNames: ['code'],
    registers,
  });
  for (const outcome of ['accepted', 'refused', 'published']) issuance.inc({ outcome }, 0);
  for (const kind of ['sth', 'inclusion', 'consistency']) proofs.inc({ kind }, 0);
  return {
    issuance: (outcome, count = 1) => issuance.inc({ outcome }, count),
    latency: (seconds) => latency.observe(seconds),
    proofRequest: (kind) => proofs.inc({ kind }),
    revocation: (reason) => revocations.inc({ reason }),
    refused: (code) => refusals.inc({ code }),
  };
}

/**
 * `hypermesh_ct_split_view_total`: times this node found its local log's root different from
 * the consensus tree head (`ca/ct/head`) at the same point of the chain (docs/ct.md,
 * "Quorum-signed tree head"). Registered by ca-node.ts; counts each distinct mismatch once.
 */
export function createCtSplitViewCounter(registry: Registry): { inc(): void } {
  const counter = new Counter({
    name: 'hypermesh_ct_split_view_total',
    help: "Times the node's CT log root differed from the quorum-signed consensus tree head",
    registers: [registry],
  });
  counter.inc(0);
  return { inc: () => counter.inc() };
}
