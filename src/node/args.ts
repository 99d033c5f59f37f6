import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './cli-error.js';

/** The option table of a command (`parseArgs` options). */
export type Options = NonNullable<ParseArgsConfig['options']>;

/** `parseArgs` with errors a person can act on, raised as CliError (exit code 2). */
export function parseCommandArgs<O extends Options>(
  args: readonly string[],
  options: O,
): ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: false; strict: true }>
>['values'] {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: false, strict: true }).values;
  } catch (error) {
    throw new CliError(`${(error as Error).message} (see --help)`);
  }
}

/** `parseCommandArgs` for commands that also take positional arguments. */
export function parseCommandLine<O extends Options>(
  args: readonly string[],
  options: O,
): ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
> {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new CliError(`${(error as Error).message} (see --help)`);
  }
}

export function requireOption(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new CliError(`--${name} is required (see --help)`);
  return value;
}

export function positiveInteger(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) <= 0) {
    throw new CliError(`--${name} must be a positive integer, got "${value}"`);
  }
  return Number(value);
}

/** Reads a passphrase from the environment variable named by `--passphrase-env`, if given. */
export function passphraseFromEnv(variable: string | undefined): string | undefined {
  if (variable === undefined) return undefined;
  const value = process.env[variable];
  if (value === undefined || value === '') {
    throw new CliError(`environment variable ${variable} (from --passphrase-env) is not set`);
  }
  return value;
}
