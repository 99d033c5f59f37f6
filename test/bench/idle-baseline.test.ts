import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { idleCpuMsPerAdmitted } from '../../bench/idle-baseline.js';

describe('idleCpuMsPerAdmitted', () => {
  it('scales the idle CPU to the loaded wall time', () => {
    // 8 CPU s idle over 20 s = 0.4 cores; the loaded run took 50 s (20 s + 30 s drain), so
    // the idle cluster over that time is 20 CPU s, over 4,000 admitted = 5 ms each.
    const ms = idleCpuMsPerAdmitted({
      idleCpuSeconds: 8,
      idleSeconds: 20,
      loadedSeconds: 50,
      admitted: 4_000,
    });
    assert.equal(ms, 5);
  });

  it('is the unscaled figure when both windows are as long', () => {
    assert.equal(
      idleCpuMsPerAdmitted({
        idleCpuSeconds: 3,
        idleSeconds: 10,
        loadedSeconds: 10,
        admitted: 1_000,
      }),
      3,
    );
  });

  it('divides by one when nothing was admitted', () => {
    assert.equal(
      idleCpuMsPerAdmitted({ idleCpuSeconds: 2, idleSeconds: 4, loadedSeconds: 8, admitted: 0 }),
      4_000,
    );
  });

  it('refuses empty windows', () => {
    for (const [idleSeconds, loadedSeconds] of [
      [0, 10],
      [10, 0],
      [Number.NaN, 10],
    ] as const) {
      assert.throws(
        () => idleCpuMsPerAdmitted({ idleCpuSeconds: 1, idleSeconds, loadedSeconds, admitted: 1 }),
        RangeError,
      );
    }
  });
});
