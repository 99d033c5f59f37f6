/**
 * The idle baseline of bench/fixed-rate.ts: the cluster's CPU while idle, scaled to the loaded
 * measurement's duration, per admitted transaction. The idle cluster is measured for the load's
 * nominal length (`--seconds`), the loaded one until its transactions committed (that plus up to
 * a minute of drain); the idle CPU is scaled by loaded ÷ idle seconds, so both figures cover the
 * same wall time (it assumes the idle cluster burns CPU at a steady rate: empty blocks, votes).
 */
export function idleCpuMsPerAdmitted(options: {
  /** Node CPU seconds used over the idle window. */
  readonly idleCpuSeconds: number;
  readonly idleSeconds: number;
  /** Wall seconds of the loaded measurement (submission + drain). */
  readonly loadedSeconds: number;
  readonly admitted: number;
}): number {
  const { idleCpuSeconds, idleSeconds, loadedSeconds, admitted } = options;
  if (!(idleSeconds > 0 && loadedSeconds > 0)) {
    throw new RangeError(
      `idle and loaded seconds must be positive, got ${idleSeconds} and ${loadedSeconds}`,
    );
  }
  return ((idleCpuSeconds * (loadedSeconds / idleSeconds)) / Math.max(1, admitted)) * 1000;
}
