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

/**
 * `text` with control characters (C0, DEL, C1) and bidirectional formatting characters (U+061C,
 * U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) written as `\u` escapes (`\u001b`): receipts, logs and event
 * attributes, node status fields, a CT log's served notes are the node's word and carry what
 * transactions chose (a proposal's title, say), and printed raw they could move the cursor,
 * rewrite earlier lines, set the terminal's title or show text in another order than it is.
 */
export function visible(text: string): string {
  return text.replace(
    /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

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
      if (brokenPipeHold !== null) {
        brokenPipeHold.lost(error);
        return;
      }
      if (error.code === 'EPIPE') process.exit(BROKEN_PIPE_EXIT_CODE);
      throw error;
    });
  }
}

const brokenPipeHandled = new WeakSet<NodeJS.WriteStream>();

/** What a write error on stdout or stderr does while `holdBrokenPipe` holds. */
let brokenPipeHold: { lost(error: NodeJS.ErrnoException): void } | null = null;

/**
 * Until `release`, losing stdout or stderr does not end the process (`exitOnBrokenPipe`): on
 * the first write error — EPIPE when the reader went away, EIO on a terminal that hung up —
 * `onLost` is called, and that and every later write error are ignored (the output is lost).
 * `release` ends the hold; when an EPIPE came meanwhile, it ends the process with 141, as
 * `exitOnBrokenPipe` would have. For `hypermesh dev`, which must stop its nodes before it exits:
 * ended at once, it would leave them running with no one reading their logs, to die of EPIPE
 * themselves in the middle of whatever they were doing.
 */
export function holdBrokenPipe(onLost: () => void): { release(): void } {
  let lost = false;
  let broken = false;
  const hold = {
    lost(error: NodeJS.ErrnoException): void {
      if (error.code === 'EPIPE') broken = true;
      if (lost) return;
      lost = true;
      onLost();
    },
  };
  brokenPipeHold = hold;
  return {
    release() {
      if (brokenPipeHold === hold) brokenPipeHold = null;
      if (broken) process.exit(BROKEN_PIPE_EXIT_CODE);
    },
  };
}

/**
 * The file a write to `file` must replace: a symbolic link's target (a trust bundle mounted as
 * a link keeps being read through it), else `file` itself.
 */
async function replaceTarget(file: string): Promise<string> {
  try {
    return await fs.realpath(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return file;
    throw error;
  }
}

/**
 * Writes `data` to `file` so that readers see the old content or the new, never a part: a
 * temporary file in the same directory (created exclusively), fsynced, then renamed over
 * `file` — over a symbolic link's target, not the link. The new file keeps the old one's mode;
 * a new file gets `options.mode` if given, else 0644 less the process's umask. On any failure
 * the temporary file is removed and `file` is untouched. File-system calls go through the
 * `fs/promises` object so tests can make one of them fail.
 */
export async function writeFileAtomically(
  file: string,
  data: string | Uint8Array,
  options: { readonly mode?: number } = {},
): Promise<void> {
  const target = await replaceTarget(file);
  const existing = await fs.stat(target).then(
    (stats) => stats.mode & 0o7777,
    () => undefined,
  );
  const directory = path.dirname(target);
  const temporary = path.join(
    directory,
    `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`,
  );
  let handle: FileHandle | undefined;
  try {
    // `open` applies the umask; an explicit or inherited mode is set exactly.
    handle = await fs.open(temporary, 'wx', options.mode ?? existing ?? 0o644);
    const exact = options.mode ?? existing;
    if (exact !== undefined) await handle.chmod(exact);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temporary, target);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
  await syncDirectory(directory);
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

/**
 * Makes the entries of `directory` durable (fsync of the directory: what a rename or a new file
 * in it changed survives a power loss). Some file systems refuse to fsync a directory; that is
 * not an error. Goes through the `fs/promises` object, like `writeFileAtomically`, so tests can
 * observe it.
 */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await fs.open(directory, 'r').catch(() => undefined);
  if (handle === undefined) return;
  try {
    await handle.sync().catch(() => undefined);
  } finally {
    await handle.close();
  }
}
