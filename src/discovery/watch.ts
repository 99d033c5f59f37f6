import { isLive } from './model.js';
import type { HealthStatus, ServiceIndexEntry } from './model.js';

/**
 * Change events between two committed versions of a service's index, for `watch` streams
 * (docs/discovery.md, "Watching"). Pure: the RPC face reads the index at each committed height
 * (`discovery/service`, proven) and sends what `serviceChanges` yields.
 */

/** A service's index as committed at `height` (as stored: expired entries may still be there). */
export interface ServiceSnapshot {
  readonly height: number;
  readonly entries: readonly ServiceIndexEntry[];
}

export type ServiceChange =
  | {
      readonly type: 'added';
      readonly instance: string;
      readonly status: HealthStatus;
      readonly expiresAt: number;
    }
  | {
      readonly type: 'removed';
      readonly instance: string;
      /**
       * `expired` when its expiry height falls within (previous, next]; `deregistered` when it
       * left while still within its TTL.
       */
      readonly reason: 'expired' | 'deregistered';
    }
  | {
      /** Registered again with changed fields: fetch the instance for its new addresses, ports… */
      readonly type: 'updated';
      readonly instance: string;
      readonly updatedAt: number;
    }
  | {
      readonly type: 'status-changed';
      readonly instance: string;
      readonly from: HealthStatus;
      readonly to: HealthStatus;
    };

function liveAt(snapshot: ServiceSnapshot): Map<string, ServiceIndexEntry> {
  const live = new Map<string, ServiceIndexEntry>();
  for (const entry of snapshot.entries) {
    if (isLive(entry, snapshot.height)) live.set(entry.instance, entry);
  }
  return live;
}

/**
 * What changed for watchers between `previous` and `next` (next.height ≥ previous.height), in
 * instance-id order: instances that became live (`added`), stopped being live (`removed`),
 * were registered again (`updated`, by `updatedAt`) or changed status (`status-changed`; an
 * instance may have both of the last two). Renewals that change nothing yield nothing.
 */
export function serviceChanges(previous: ServiceSnapshot, next: ServiceSnapshot): ServiceChange[] {
  if (next.height < previous.height) {
    throw new RangeError(
      `the next snapshot (height ${next.height}) is older than the previous (${previous.height})`,
    );
  }
  const before = liveAt(previous);
  const after = liveAt(next);
  const ids = [...new Set([...before.keys(), ...after.keys()])].sort();
  const changes: ServiceChange[] = [];
  for (const instance of ids) {
    const old = before.get(instance);
    const now = after.get(instance);
    if (old === undefined && now !== undefined) {
      changes.push({ type: 'added', instance, status: now.status, expiresAt: now.expiresAt });
    } else if (old !== undefined && now === undefined) {
      const reason = old.expiresAt <= next.height ? 'expired' : 'deregistered';
      changes.push({ type: 'removed', instance, reason });
    } else if (old !== undefined && now !== undefined) {
      if (now.updatedAt !== old.updatedAt) {
        changes.push({ type: 'updated', instance, updatedAt: now.updatedAt });
      }
      if (now.status !== old.status) {
        changes.push({ type: 'status-changed', instance, from: old.status, to: now.status });
      }
    }
  }
  return changes;
}
