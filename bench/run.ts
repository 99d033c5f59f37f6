/**
 * `npm run bench -- <suite> [--quick]`: runs one benchmark suite and prints one JSON object per
 * line on stdout (see report.ts). Progress goes to stderr.
 */
import { parseArgs } from 'node:util';
import { formatResult, type BenchSuite } from './report.js';

const suites: Record<string, () => Promise<BenchSuite>> = {
  crypto: async () => (await import('./suites/crypto.js')).default,
  'consensus-proof': async () => (await import('./suites/consensus-proof.js')).default,
  stoq: async () => (await import('./suites/stoq.js')).default,
  consensus: async () => (await import('./suites/consensus.js')).default,
  caesar: async () => (await import('./suites/caesar.js')).default,
  dns: async () => (await import('./suites/dns.js')).default,
  discovery: async () => (await import('./suites/discovery.js')).default,
  trustchain: async () => (await import('./suites/trustchain.js')).default,
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { quick: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
});

const name = positionals[0];
if (values.help || !name || !(name in suites)) {
  const list = Object.keys(suites).join(', ');
  const usage = `usage: npm run bench -- <suite> [--quick]\nsuites: ${list}\n`;
  if (values.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  process.stderr.write(name ? `unknown suite "${name}"\n${usage}` : usage);
  process.exit(2);
}

const load = suites[name];
if (!load) throw new Error('unreachable');
const suite = await load();
const started = Date.now();
await suite({
  quick: values.quick ?? false,
  emit: (result) => process.stdout.write(`${formatResult(name, result)}\n`),
  progress: (message) => process.stderr.write(`[bench ${name}] ${message}\n`),
});
process.stderr.write(`[bench ${name}] done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
// Native handles (QUIC endpoints) may keep the loop alive; the suite closed what it opened.
process.exit(0);
