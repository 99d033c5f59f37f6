import { createInterface } from 'node:readline';

/**
 * Answers each line read on stdin with `cpu <µs>`, this process's user + system CPU time so
 * far (`process.cpuUsage()`), so a benchmark can measure a server's CPU per query from inside
 * it over exactly the queries it sent.
 */
export function reportCpuOnStdin(): void {
  createInterface({ input: process.stdin }).on('line', () => {
    const { user, system } = process.cpuUsage();
    process.stdout.write(`cpu ${user + system}\n`);
  });
}
