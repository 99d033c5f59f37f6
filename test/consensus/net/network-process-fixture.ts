import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { toHex } from '../../../src/crypto/bytes.js';
import type { SocketAddress } from '../../../src/stoq/transport.js';
import type { TestIdentity, TestPki } from '../../helpers/pki.js';
import { formatAddress } from './net-fixture.js';
import {
  parseProcessEvent,
  type ProcessCommand,
  type ProcessConfig,
  type ProcessEvent,
} from './network-process-protocol.js';

const program = fileURLToPath(new URL('./network-process.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

export interface NetworkProcessOptions {
  readonly identity: TestIdentity;
  readonly pki: TestPki;
  /** 0 for a free port. */
  readonly port: number;
  readonly peers: readonly { readonly name: string; readonly address: SocketAddress }[];
  /** Deadline for the process to start and report ready. */
  readonly readyWithinMs: number;
}

/**
 * One consensus-network node in its own process (network-process.ts), which the test can
 * kill -9. Waits are driven by the lines the process prints, each with a failure deadline.
 */
export class NetworkProcess {
  readonly events: ProcessEvent[] = [];
  readonly exited: Promise<void>;
  private readonly listeners = new Set<() => void>();
  private stderr = '';
  private port = 0;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      this.events.push(parseProcessEvent(line));
      this.notify();
    });
    this.exited = once(child, 'exit').then(() => this.notify());
  }

  static async start(options: NetworkProcessOptions): Promise<NetworkProcess> {
    const child = spawn(process.execPath, ['--import', tsx, program], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const started = new NetworkProcess(options.identity.name, child);
    const config: ProcessConfig = {
      name: options.identity.name,
      port: options.port,
      chain: options.identity.chain.map(toHex),
      seed: toHex(options.identity.transportKey.seed),
      falcon: {
        publicKey: toHex(options.identity.falcon.publicKey),
        secretKey: toHex(options.identity.falcon.secretKey),
      },
      roots: options.pki.roots.map(toHex),
      peers: options.peers.map((peer) => ({ id: peer.name, address: formatAddress(peer.address) })),
    };
    child.stdin?.write(`${JSON.stringify(config)}\n`);
    try {
      started.port = await started.waitFor(
        (events) => events.find((event) => event.event === 'ready')?.port,
        `${options.identity.name} to start`,
        options.readyWithinMs,
      );
    } catch (error) {
      await started.kill();
      throw error;
    }
    return started;
  }

  get address(): SocketAddress {
    return { host: '127.0.0.1', port: this.port };
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Resolves with `find(events)` once it is defined: checked now and after each event the
   * process prints; fails after `ms` or when the process exits first.
   */
  waitFor<T>(
    find: (events: readonly ProcessEvent[]) => T | undefined,
    what: string,
    ms: number,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (outcome: { value: T } | { error: Error }): void => {
        clearTimeout(deadline);
        this.listeners.delete(check);
        if ('value' in outcome) resolve(outcome.value);
        else reject(outcome.error);
      };
      const fail = (why: string): Error =>
        new Error(
          `${why} waiting for ${what}; last events: ${JSON.stringify(this.events.slice(-5))}; ` +
            `stderr: ${this.stderr}`,
        );
      const check = (): void => {
        const value = find(this.events);
        if (value !== undefined) finish({ value });
        else if (!this.running) finish({ error: fail(`${this.name} exited`) });
      };
      // The only timer: the failure deadline.
      const deadline = setTimeout(
        () => finish({ error: fail(`timed out after ${ms} ms`) }),
        Math.max(0, ms),
      );
      this.listeners.add(check);
      check();
    });
  }

  send(command: ProcessCommand): void {
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** kill -9, and wait until the process is gone. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
