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

/** The largest count or duration in ms an option takes unless it names another: 2^31 - 1. */
export const MAX_INTEGER_OPTION = 2_147_483_647;

/**
 * `--name N`, a whole number from 1 to `max` (default `MAX_INTEGER_OPTION`, what `setTimeout`
 * accepts), or `fallback` when absent. Digits only: no sign, exponent or fraction.
 */
export function positiveInteger(
  value: string | undefined,
  name: string,
  fallback: number,
  max: number = MAX_INTEGER_OPTION,
): number {
  if (value === undefined) return fallback;
  // The length bound keeps Number() exact: 16 digits stay below 2^53.
  const number = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < 1 || number > max) {
    throw new CliError(`--${name} must be an integer from 1 to ${max}, got "${value}"`);
  }
  return number;
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
