/**
 * The consensus network's logging seam (the node passes its own logger; src/node/log.ts's
 * `Logger` fits). The default writes warnings and errors as JSON lines to stderr.
 */
export interface ConsensusNetworkLogger {
  info(message: string, fields: Record<string, unknown>): void;
  warn(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

export const stderrNetworkLogger: ConsensusNetworkLogger = {
  info: () => undefined,
  warn: (message, fields) => writeLine('warn', message, fields),
  error: (message, fields) => writeLine('error', message, fields),
};

function writeLine(level: string, message: string, fields: Record<string, unknown>): void {
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, component: 'consensus.net', message, ...fields })}\n`,
  );
}
