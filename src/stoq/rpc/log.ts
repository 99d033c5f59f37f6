/**
 * The RPC layer's logging seam: structured events, no global logger. The node wires its own
 * logger in; the default writes one JSON line per event to stderr.
 */
export interface RpcLogger {
  warn(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

export const stderrLogger: RpcLogger = {
  warn: (message, fields) => writeLine('warn', message, fields),
  error: (message, fields) => writeLine('error', message, fields),
};

function writeLine(level: string, message: string, fields: Record<string, unknown>): void {
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, component: 'stoq.rpc', message, ...fields })}\n`,
  );
}
