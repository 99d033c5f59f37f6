import type { Server } from 'node:net';

/**
 * Starts `server` listening on `host`:`port` (0: any free port). A failure to listen rejects
 * with the listen error. Once listening, an `error` listener stays attached: a net server emits
 * `error` when accepting a connection fails (EMFILE when the process is out of file descriptors,
 * for one), and an `error` event without a listener would end the process. Such failures are
 * handed to `onError` (default: ignored; the server keeps accepting once descriptors free up).
 */
export function listenKeepingErrors(
  server: Server,
  port: number,
  host: string,
  onError: (error: Error) => void = () => {},
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      server.on('error', onError);
      resolve();
    });
  });
}
