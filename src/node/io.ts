import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { CliError } from './cli-error.js';

/** Where a command writes: the terminal in production, a buffer in tests. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** What a shell reports for a process that SIGPIPE ended (128 + 13). */
export const BROKEN_PIPE_EXIT_CODE = 141;

/**
 * Ends the process quietly when the reader of stdout or stderr goes away (`… | head -1`):
 * Node ignores SIGPIPE, so the next write fails with EPIPE as an 'error' event that would
 * otherwise crash with a stack trace. There is no one left to tell, so nothing is printed.
 */
export function exitOnBrokenPipe(
  streams: readonly NodeJS.WriteStream[] = [process.stdout, process.stderr],
): void {
  for (const stream of streams) {
    if (brokenPipeHandled.has(stream)) continue;
    brokenPipeHandled.add(stream);
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(BROKEN_PIPE_EXIT_CODE);
      throw error;
    });
  }
}

const brokenPipeHandled = new WeakSet<NodeJS.WriteStream>();

/**
 * Writes `data` to `file` so that readers see the old content or the new, never a part: a
 * temporary file in the same directory (created exclusively), fsynced, then renamed over
 * `file`. On any failure the temporary file is removed and `file` is untouched. File-system
 * calls go through the `fs/promises` object so tests can make one of them fail.
 */
export async function writeFileAtomically(
  file: string,
  data: string | Uint8Array,
  options: { readonly mode?: number } = {},
): Promise<void> {
  const mode = options.mode ?? 0o644;
  const directory = path.dirname(file);
  const temporary = path.join(
    directory,
    `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`,
  );
  let handle: FileHandle | undefined;
  try {
    handle = await fs.open(temporary, 'wx', mode);
    await handle.chmod(mode);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temporary, file);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
  // Makes the new directory entry durable; some file systems refuse to fsync a directory.
  const dirHandle = await fs.open(directory, 'r').catch(() => undefined);
  if (dirHandle !== undefined) {
    await dirHandle.sync().catch(() => undefined);
    await dirHandle.close();
  }
}

/**
 * Refuses, before anything is requested or committed, an output path that cannot be written:
 * its directory missing, not a directory or not writable, or the path itself a directory.
 * `what` names it for the message (`--out PREFIX`'s "PREFIX.pem", "--write-bundle FILE").
 */
export async function checkOutputPath(file: string, what: string): Promise<void> {
  const directory = path.dirname(path.resolve(file));
  const info = await fs.stat(directory).catch((error: NodeJS.ErrnoException) => {
    throw new CliError(
      error.code === 'ENOENT'
        ? `${what}: directory ${directory} does not exist`
        : `${what}: cannot use directory ${directory}: ${error.message}`,
    );
  });
  if (!info.isDirectory()) throw new CliError(`${what}: ${directory} is not a directory`);
  await fs.access(directory, constants.W_OK | constants.X_OK).catch(() => {
    throw new CliError(`${what}: directory ${directory} is not writable`);
  });
  const target = await fs.stat(file).catch(() => null);
  if (target?.isDirectory() === true) throw new CliError(`${what}: ${file} is a directory`);
}
