import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { ServiceInstance } from '../discovery/index.js';
import type { Session, SocketAddress } from '../stoq/index.js';

/**
 * The health checks a hosting node runs (docs/discovery.md, "Health checks"): each probe tries
 * the instance's first address, gives up when `signal` aborts (the runner aborts it at the
 * check's timeout), and answers whether the instance is up and, if not, why.
 */

export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export type Probe = (instance: ServiceInstance, signal: AbortSignal) => Promise<ProbeResult>;

/** Dials and authenticates a STOQ peer (a node's `StoqEndpoint.connect`). */
export type StoqDial = (address: SocketAddress, signal: AbortSignal) => Promise<Session>;

const OK: ProbeResult = { ok: true };

function fail(reason: string): ProbeResult {
  return { ok: false, reason };
}

function reasonOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === undefined ? error.message : `${code}: ${error.message}`;
  }
  return String(error);
}

function portOf(instance: ServiceInstance, protocols: readonly string[]): number | undefined {
  return instance.ports.find((port) => protocols.includes(port.protocol))?.port;
}

/** A TCP connection to `host:port` is accepted. */
export function tcpProbe(host: string, port: number, signal: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, signal });
    socket.once('connect', () => {
      socket.destroy();
      resolve(OK);
    });
    socket.once('error', (error) => resolve(fail(reasonOf(error))));
  });
}

/** `GET url` answers with a 2xx status (Consul's rule: anything else is critical). */
export function httpProbe(url: URL, signal: AbortSignal): Promise<ProbeResult> {
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve) => {
    const request = get(url, { signal, headers: { 'user-agent': 'hypermesh-health' } }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status >= 200 && status < 300 ? OK : fail(`HTTP ${status}`));
    });
    request.once('error', (error) => resolve(fail(reasonOf(error))));
  });
}

/**
 * What a check program's environment carries over from the node's: where to find programs,
 * the locale and time zone. Nothing else — the node's environment holds secrets (the key file's
 * passphrase variable, `identity.passphraseEnv`) that a health check has no business reading.
 */
export const COMMAND_PROBE_ENV_KEYS = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ'] as const;

function commandProbeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of COMMAND_PROBE_ENV_KEYS) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}

/** The program exits with code 0. It runs without a shell, in a minimal environment. */
export function commandProbe(args: readonly string[], signal: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const [program, ...rest] = args;
    const options = { signal, maxBuffer: 64 * 1024, env: commandProbeEnv() };
    execFile(program!, rest, options, (error) => {
      if (error === null) resolve(OK);
      else if (typeof error.code === 'number') resolve(fail(`exit code ${error.code}`));
      else resolve(fail(reasonOf(error)));
    });
  });
}

/**
 * A STOQ connection to the instance authenticates, and the certificate it presents names the
 * instance's registered identity.
 */
export async function stoqPingProbe(
  dial: StoqDial,
  address: SocketAddress,
  identity: string,
  signal: AbortSignal,
): Promise<ProbeResult> {
  let session: Session;
  try {
    session = await dial(address, signal);
  } catch (error) {
    return fail(reasonOf(error));
  }
  session.connection.close('health check done');
  return session.peer.uri === identity
    ? OK
    : fail(`the peer is ${session.peer.uri}, not ${identity}`);
}

function urlHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** The probe for every check kind, dialling STOQ with `dial`. */
export function createProbe(dial: StoqDial): Probe {
  return async (instance, signal) => {
    const { check } = instance;
    const host = instance.addresses[0]!;
    switch (check.kind) {
      case 'tcp':
        return tcpProbe(host, check.port, signal);
      case 'http': {
        const secure = portOf(instance, ['https']) === check.port;
        const url = new URL(
          `${secure ? 'https' : 'http'}://${urlHost(host)}:${check.port}${check.path}`,
        );
        return httpProbe(url, signal);
      }
      case 'command':
        return commandProbe(check.args, signal);
      case 'stoq-ping':
        return stoqPingProbe(dial, { host, port: check.port }, instance.identity, signal);
    }
  };
}
