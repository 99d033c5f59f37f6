import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Builds the Go cross-check helpers under test/helpers/go-* offline, in GOPATH mode, against
 * Debian's golang.org/x/mod sources — no modules, no proxy, no user config.
 */
const DEBIAN_PACKAGES = 'golang-go golang-golang-x-mod-dev';
const GOPATH = '/usr/share/gocode';

/** The path of a file of Debian's golang.org/x/mod source, e.g. `sumdb/tlog/tlog.go`. */
export function goModSource(relative: string): string {
  return join(GOPATH, 'src/golang.org/x/mod', relative);
}

/** Offline GOPATH-mode build: no modules, no proxy, no user config, a private build cache. */
export function goEnvironment(workDir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: workDir,
    GO111MODULE: 'off',
    GOPATH,
    GOFLAGS: '',
    GOPROXY: 'off',
    GOENV: 'off',
    GOTOOLCHAIN: 'local',
    GOTELEMETRY: 'off',
    CGO_ENABLED: '0',
    GOCACHE: join(workDir, 'gocache'),
  };
}

export interface GoPrerequisites {
  /** Why the Go check cannot run here, or undefined when it can. */
  missing: string | undefined;
  /** The `skip` option for `describe`: skipped when something is missing, except on CI. */
  skip: string | false;
}

/** Checks for the Go toolchain and the given golang.org/x/mod source files. */
export function goPrerequisites(sources: readonly string[]): GoPrerequisites {
  const missing = missingPrerequisite(sources);
  return { missing, skip: missing !== undefined && process.env.CI !== 'true' ? missing : false };
}

function missingPrerequisite(sources: readonly string[]): string | undefined {
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error !== undefined || go.status !== 0) {
    return `the Go toolchain ('go') is not installed; install the Debian packages ${DEBIAN_PACKAGES}`;
  }
  for (const source of sources) {
    if (!existsSync(source))
      return `${source} is missing; install the Debian packages ${DEBIAN_PACKAGES}`;
  }
  return undefined;
}

export interface GoBuild {
  /** A fresh temporary directory holding the binary and its build cache. */
  workDir: string;
  binary: string;
  /** The environment to run the binary with (the same offline one it was built with). */
  env: NodeJS.ProcessEnv;
  /** Deletes `workDir`. */
  remove(): void;
}

/** Builds `source` (a main.go) into a binary `name` in a fresh temporary directory; fails the test if it does not build. */
export async function buildGoHelper(source: string, name: string): Promise<GoBuild> {
  const workDir = mkdtempSync(join(tmpdir(), `hypermesh-${name}-`));
  const binary = join(workDir, name);
  const env = goEnvironment(workDir);
  const remove = (): void => rmSync(workDir, { recursive: true, force: true });
  try {
    await promisify(execFile)('go', ['build', '-o', binary, source], {
      cwd: workDir,
      env,
      timeout: 600_000,
    });
  } catch (error) {
    remove();
    const stderr = (error as { stderr?: string }).stderr ?? '';
    assert.fail(`building ${source} failed: ${(error as Error).message}\n${stderr}`);
  }
  return { workDir, binary, env, remove };
}
