/** Structured logs: one JSON object per line on stderr, so stdout stays free for command output. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * A logger writing `{"time","level",...base,"msg",...fields}` lines. Entries below `minLevel`
 * (default `info`) are dropped.
 */
export function createLogger(
  base: Record<string, unknown>,
  write: (line: string) => void = (line) => process.stderr.write(line),
  minLevel: LogLevel = 'info',
): Logger {
  const threshold = LOG_LEVELS.indexOf(minLevel);
  const log =
    (level: LogLevel) =>
    (msg: string, fields: Record<string, unknown> = {}): void => {
      if (LOG_LEVELS.indexOf(level) < threshold) return;
      write(
        `${JSON.stringify({ time: new Date().toISOString(), level, ...base, msg, ...fields }, replacer)}\n`,
      );
    };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) };
  }
  return value;
}
