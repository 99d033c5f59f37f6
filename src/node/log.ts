/** Structured logs: one JSON object per line on stderr, so stdout stays free for command output. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(
  base: Record<string, unknown>,
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const log =
    (level: LogLevel) =>
    (msg: string, fields: Record<string, unknown> = {}): void => {
      write(
        `${JSON.stringify({ time: new Date().toISOString(), level, ...base, msg, ...fields }, replacer)}\n`,
      );
    };
  return { info: log('info'), warn: log('warn'), error: log('error') };
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}
