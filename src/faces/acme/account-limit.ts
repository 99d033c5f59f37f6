import { isIP } from 'node:net';
import { ipAddressBytes } from '../../trustchain/ca/names.js';

/**
 * How many accounts one client address may create per window, as Let's Encrypt limits new
 * registrations per IP address (10 per 3 hours per IPv4 address; IPv6 counted per range). An
 * IPv4 address counts alone; an IPv6 address counts with its /64, the smallest network one
 * subscriber usually gets. Fixed windows per address, kept in memory (a restart forgets them)
 * and bounded: past `maxTrackedAddresses`, the addresses seen longest ago are forgotten.
 */

export interface NewAccountLimitOptions {
  readonly maxPerWindow: number;
  readonly windowMs: number;
  readonly maxTrackedAddresses: number;
}

export type NewAccountDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly key: string; readonly retryAfterMs: number };

interface Window {
  readonly startMs: number;
  count: number;
}

/** The key an address counts under: IPv4 (also IPv4-mapped IPv6) alone, IPv6 by its /64. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1] as string;
  const unzoned = address.split('%')[0] as string;
  if (isIP(unzoned) !== 6) return address;
  return `${Buffer.from(ipAddressBytes(unzoned).subarray(0, 8)).toString('hex')}/64`;
}

export class NewAccountLimit {
  /** Windows by address key; a Map iterates in insertion order, oldest window first. */
  private readonly windows = new Map<string, Window>();

  constructor(private readonly options: NewAccountLimitOptions) {
    for (const [name, value] of Object.entries(options)) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`${name} must be a positive integer, not ${String(value)}`);
      }
    }
  }

  /** Whether `address` may create an account at `nowMs` (nothing is counted). */
  check(address: string, nowMs: number): NewAccountDecision {
    const key = addressKey(address);
    const window = this.current(key, nowMs);
    if (window === undefined || window.count < this.options.maxPerWindow) return { allowed: true };
    return { allowed: false, key, retryAfterMs: window.startMs + this.options.windowMs - nowMs };
  }

  /** Counts an account created from `address` at `nowMs`. */
  record(address: string, nowMs: number): void {
    const key = addressKey(address);
    const window = this.current(key, nowMs);
    if (window !== undefined) {
      window.count += 1;
      return;
    }
    this.windows.delete(key);
    this.windows.set(key, { startMs: nowMs, count: 1 });
    for (const oldest of this.windows.keys()) {
      if (this.windows.size <= this.options.maxTrackedAddresses) break;
      this.windows.delete(oldest);
    }
  }

  /** Addresses with a window kept (for tests of the bound). */
  get trackedAddresses(): number {
    return this.windows.size;
  }

  private current(key: string, nowMs: number): Window | undefined {
    const window = this.windows.get(key);
    if (window === undefined || nowMs >= window.startMs + this.options.windowMs) return undefined;
    return window;
  }
}
