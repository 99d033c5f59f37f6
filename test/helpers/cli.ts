import { main } from '../../src/node/cli.js';

export interface CliResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/**
 * Runs `hypermesh <args>` in this process (the CLI's `main`), collecting what it prints; `env`
 * is set for the call and restored after it.
 */
export async function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  let out = '';
  let err = '';
  const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
  Object.assign(process.env, env);
  try {
    const code = await main([...args], {
      out: (text) => void (out += text),
      err: (text) => void (err += text),
    });
    return { code, out, err };
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

/** `cluster init` for `validators` nodes into `out`, on ports the OS picks (what tests use). */
export function clusterInitArgs(out: string, validators: number): string[] {
  return [
    'cluster',
    'init',
    '--validators',
    String(validators),
    '--out',
    out,
    '--base-port',
    '0',
    '--metrics-base-port',
    '0',
  ];
}
