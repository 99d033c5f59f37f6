import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isHyperMeshError } from '../../src/codec/error.js';
import { StorageErrorCode } from '../../src/storage/errors.js';
import { checkIntegrity } from '../../src/storage/integrity.js';
import { StateTables } from '../../src/storage/state-store.js';
import { openStore } from '../../src/storage/store.js';
import {
  changes,
  fixtureHeaderStateRoot,
  hex,
  nextBlock,
  temporaryDirectory,
} from './chain-fixture.js';

type Connection = InstanceType<typeof Database>;

/**
 * `db` with every statement it prepares watched: which of its methods were called, by SQL text
 * (`raw()` and `pluck()` hand back the watched statement, so chains are seen whole).
 */
function watchedStatements(db: Connection): { db: Connection; calls: Map<string, string[]> } {
  const calls = new Map<string, string[]>();
  const watch = (statement: object, sql: string): object => {
    const proxy: object = new Proxy(statement, {
      get(target, property, receiver) {
        const member: unknown = Reflect.get(target, property, receiver);
        if (typeof member !== 'function') return member;
        return (...args: unknown[]) => {
          calls.set(sql, [...(calls.get(sql) ?? []), String(property)]);
          const result: unknown = member.apply(target, args);
          return result === target ? proxy : result;
        };
      },
    });
    return proxy;
  };
  const watched = new Proxy(db, {
    get(target, property) {
      const member: unknown = Reflect.get(target, property, target);
      if (property === 'prepare') {
        return (sql: string) => watch(target.prepare(sql), sql);
      }
      return typeof member === 'function' ? member.bind(target) : member;
    },
  });
  return { db: watched, calls };
}

const storageError = (code: StorageErrorCode) => (error: unknown) => isHyperMeshError(error, code);

describe('verifyIntegrity and SQLite damage', () => {
  let dir: Awaited<ReturnType<typeof temporaryDirectory>>;

  before(async () => {
    dir = await temporaryDirectory('integrity');
  });
  after(() => dir.cleanup());

  it('reads the latest state row by row, never every value at once', () => {
    // The check hashes each latest value: loaded all at once (`.all()`), a state of N MiB
    // needed N MiB more for the check, on every restore. Memory is too noisy to assert on, so
    // this watches how the statement that reads the values is consumed.
    const path = dir.file('streamed.db');
    const store = openStore(path);
    for (let i = 0; i < 4; i++) {
      store.saveBlock(nextBlock(store, { stateChanges: changes(`k${i % 2}`, 5, `v${i}`) }));
    }
    const expected = store.verifyIntegrity({ headerStateRoot: fixtureHeaderStateRoot });
    store.close();

    const raw = new Database(path, { readonly: true });
    try {
      const { db, calls } = watchedStatements(raw);
      const report = checkIntegrity(db, new StateTables(db, { writer: false }), {
        headerStateRoot: fixtureHeaderStateRoot,
      });
      assert.equal(report.stateKeys, 10);
      assert.equal(hex(report.stateRoot), hex(expected.stateRoot));
      const values = [...calls].filter(([sql]) => /FROM state_value GROUP BY key/.test(sql));
      assert.equal(values.length, 1, 'one statement reads the latest values');
      const [, methods] = values[0]!;
      assert.ok(methods.includes('iterate'), `iterated: ${methods.join(', ')}`);
      assert.ok(!methods.includes('all'), `never read whole: ${methods.join(', ')}`);
    } finally {
      raw.close();
    }
  });

  it('a flipped byte in the block-hash index, with the table row intact, is CORRUPT', () => {
    const path = dir.file('index-flip.db');
    const store = openStore(path);
    for (let i = 0; i < 5; i++) {
      store.saveBlock(nextBlock(store, { stateChanges: changes(`b${i}`, 3, 'v') }));
    }
    const hash = store.blocks.byHeight(1)!.hash;
    store.verifyIntegrity();
    store.close();

    // The index SQLite creates for `hash UNIQUE`: find the hash on its (single) page only.
    const raw = new Database(path, { readonly: true });
    const pageSize = Number(raw.pragma('page_size', { simple: true }));
    const { rootpage } = raw
      .prepare(
        "SELECT rootpage FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'block' AND sql IS NULL",
      )
      .get() as { rootpage: number };
    raw.close();
    const bytes = readFileSync(path);
    const pageStart = (rootpage - 1) * pageSize;
    const at = bytes.subarray(pageStart, pageStart + pageSize).indexOf(Buffer.from(hash));
    assert.ok(at >= 0, 'the hash is on the index page');
    bytes[pageStart + at + 31]! ^= 0x01;
    writeFileSync(path, bytes);

    const damaged = openStore(path);
    try {
      // What the damage does: the lookup by hash misses a stored block.
      assert.equal(damaged.blocks.byHash(hash), null);
      assert.equal(hex(damaged.blocks.byHeight(1)!.hash), hex(hash));
      assert.throws(
        () => damaged.verifyIntegrity(),
        (error: unknown) =>
          storageError(StorageErrorCode.CORRUPT)(error) &&
          /integrity_check/.test((error as Error).message),
      );
    } finally {
      damaged.close();
    }
  });
});
