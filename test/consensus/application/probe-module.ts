import { decodeCanonical, encodeCanonical } from '../../../src/codec/cbor.js';
import { ModuleError } from '../../../src/consensus/application/index.js';
import type { Module, ModuleState } from '../../../src/consensus/application/index.js';

/**
 * A module for router tests: its body says what to do, so a test can make it write, refuse in
 * `check` or `apply`, fail with a plain exception (a module fault), or keep its state view.
 */
export type ProbeAction = 'write' | 'refuse' | 'check-fail' | 'fault' | 'stash';

export interface ProbeTx {
  readonly action: ProbeAction;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

const ACTIONS: readonly string[] = ['write', 'refuse', 'check-fail', 'fault', 'stash'];

export function probeBody(action: ProbeAction, key: string, value = ''): Uint8Array {
  const encoder = new TextEncoder();
  return encodeCanonical({ action, key: encoder.encode(key), value: encoder.encode(value) });
}

export interface ProbeModule extends Module<ProbeTx> {
  /** The state view kept by the last `stash` transaction. */
  stashed: ModuleState | undefined;
}

export function createProbeModule(): ProbeModule {
  const probe: ProbeModule = {
    name: 'probe',
    stashed: undefined,
    decodeBody(body) {
      let decoded: unknown;
      try {
        decoded = decodeCanonical(body);
      } catch (error) {
        throw new ModuleError('PROBE_MALFORMED', 1, `probe body: ${(error as Error).message}`);
      }
      const tx = decoded as Partial<ProbeTx> | null;
      if (
        tx === null ||
        typeof tx !== 'object' ||
        typeof tx.action !== 'string' ||
        !ACTIONS.includes(tx.action) ||
        !(tx.key instanceof Uint8Array) ||
        !(tx.value instanceof Uint8Array)
      ) {
        throw new ModuleError('PROBE_MALFORMED', 1, 'probe body: not {action, key, value}');
      }
      return tx as ProbeTx;
    },
    check(_ctx, tx) {
      if (tx.action === 'check-fail') {
        throw new ModuleError('PROBE_CHECK_FAILED', 3, 'probe check refused it');
      }
    },
    apply(ctx, tx) {
      ctx.state.set(tx.key, tx.value);
      if (tx.action === 'refuse') throw new ModuleError('PROBE_REFUSED', 7, 'probe refused it');
      if (tx.action === 'fault') throw new Error('probe module bug');
      if (tx.action === 'stash') probe.stashed = ctx.state;
    },
    query(path, data) {
      return path === 'get' ? { key: data } : undefined;
    },
  };
  return probe;
}
