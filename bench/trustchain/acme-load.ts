/**
 * ACME issuance through the nodes' ACME servers (docs/acme.md "In the node") with `acme-client`
 * from npm: `clients` concurrent clients (client c talks to node c mod n, with its own fresh
 * account), each placing `orders` orders one after the other. An order is the full RFC 8555
 * flow for the IP identifier 127.0.0.1 (the node ACME accounts' genesis grant covers the listen
 * address): newOrder → authorization → http-01 (answered by the benchmark's challenge server,
 * which every node's `acme.http01Port` points to) → finalize with a fresh P-256 CSR → poll the
 * order → download the chain. Latency is the whole order, newOrder to the downloaded chain.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as acme from 'acme-client';
import { parseCertificate, pemToDerList } from '../../src/crypto/x509.js';

export const ACME_IDENTIFIER = '127.0.0.1';

export interface ChallengeServer {
  readonly port: number;
  /** token → key authorization, served at /.well-known/acme-challenge/<token>. */
  readonly tokens: Map<string, string>;
  close(): Promise<void>;
}

export async function startChallengeServer(): Promise<ChallengeServer> {
  const tokens = new Map<string, string>();
  const prefix = '/.well-known/acme-challenge/';
  const server = http.createServer((request, response) => {
    const url = request.url ?? '';
    const answer = url.startsWith(prefix) ? tokens.get(url.slice(prefix.length)) : undefined;
    if (answer === undefined) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/plain' }).end(answer);
  });
  await new Promise<void>((resolve) => server.listen(0, ACME_IDENTIFIER, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    tokens,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface AcmeRunResult {
  readonly completed: number;
  readonly failed: number;
  /** Failure messages with their counts. */
  readonly failures: ReadonlyMap<string, number>;
  /** Milliseconds per completed order. */
  readonly latencies: readonly number[];
  /** Completed orders over the wall time of the run, per second. */
  readonly rate: number;
  readonly seconds: number;
}

/** acme-client's polling: first retry after 100 ms, then up to 500 ms apart. */
const BACKOFF = { backoffAttempts: 600, backoffMin: 100, backoffMax: 500 } as const;

async function oneOrder(
  client: acme.Client,
  csr: Buffer,
  tokens: Map<string, string>,
): Promise<void> {
  const order = await client.createOrder({
    identifiers: [{ type: 'ip', value: ACME_IDENTIFIER }],
  });
  for (const authorization of await client.getAuthorizations(order)) {
    const challenge = authorization.challenges.find((candidate) => candidate.type === 'http-01');
    if (challenge === undefined) throw new Error('the authorization offers no http-01 challenge');
    tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
    try {
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
    } finally {
      tokens.delete(challenge.token);
    }
  }
  const finalized = await client.finalizeOrder(order, csr);
  const valid = await client.waitForValidStatus(finalized);
  const chain = await client.getCertificate(valid);
  const leaf = pemToDerList(chain)[0];
  if (leaf === undefined || !parseCertificate(leaf).ipAddresses.includes(ACME_IDENTIFIER)) {
    throw new Error('the downloaded chain has no leaf for 127.0.0.1');
  }
}

export async function runAcmeOrders(options: {
  readonly directories: readonly string[];
  readonly httpsRootPem: string;
  readonly clients: number;
  readonly orders: number;
  readonly tokens: Map<string, string>;
  /** No order is started after this time (Date.now() ms). */
  readonly deadline: number;
}): Promise<AcmeRunResult> {
  acme.axios.defaults.httpsAgent = new https.Agent({ ca: options.httpsRootPem, keepAlive: true });
  // Keys, CSRs and accounts before the clock starts.
  const workers = await Promise.all(
    Array.from({ length: options.clients }, async (_, c) => {
      const client = new acme.Client({
        directoryUrl: options.directories[c % options.directories.length] as string,
        accountKey: await acme.crypto.createPrivateEcdsaKey(),
        ...BACKOFF,
      });
      await client.createAccount({ termsOfServiceAgreed: true });
      const csrs: Buffer[] = [];
      for (let i = 0; i < options.orders; i++) {
        const [, csr] = await acme.crypto.createCsr(
          { altNames: [ACME_IDENTIFIER] },
          await acme.crypto.createPrivateEcdsaKey(),
        );
        csrs.push(csr);
      }
      return { client, csrs };
    }),
  );
  const latencies: number[] = [];
  const failures = new Map<string, number>();
  const started = performance.now();
  await Promise.all(
    workers.map(async ({ client, csrs }) => {
      for (const csr of csrs) {
        if (Date.now() >= options.deadline) return;
        const begin = performance.now();
        try {
          await oneOrder(client, csr, options.tokens);
          latencies.push(performance.now() - begin);
        } catch (error) {
          const message = (error as Error).message.slice(0, 160);
          failures.set(message, (failures.get(message) ?? 0) + 1);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const failed = [...failures.values()].reduce((sum, n) => sum + n, 0);
  return {
    completed: latencies.length,
    failed,
    failures,
    latencies,
    rate: latencies.length / seconds,
    seconds,
  };
}
