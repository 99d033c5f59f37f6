import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeCanonical, encodeCanonical } from '../../../src/codec/cbor.js';
import type { TxCheckResult } from '../../../src/consensus/app.js';
import {
  ApplicationError,
  ApplicationErrorCode,
  ModuleError,
  createApplication,
} from '../../../src/consensus/application/index.js';
import type {
  Module,
  ModuleState,
  ModuleStateReader,
} from '../../../src/consensus/application/index.js';
import { createKvModule } from '../../../src/kv/index.js';
import { CHAIN_ID, DIFFICULTY, blockAt, makeSender, openNode, tx, utf8 } from './fixture.js';
import { createProbeModule, probeBody } from './probe-module.js';

/**
 * `Module.reads` and `ctx.foreign` (module.ts): a module reads the state of the modules it
 * declares, read-only, over the state its own view reads.
 */

type ReaderAction = 'expect' | 'write' | 'stash';

interface ReaderTx {
  readonly action: ReaderAction;
  readonly module: string;
  readonly key: Uint8Array;
  /** The value `expect` requires the foreign key to hold (empty: absent). */
  readonly value: Uint8Array;
}

function readerBody(action: ReaderAction, module: string, key: string, value = ''): Uint8Array {
  return encodeCanonical({ action, module, key: utf8(key), value: utf8(value) });
}

interface ReaderModule extends Module<ReaderTx> {
  stashed: ModuleStateReader | undefined;
}

/**
 * Reads `module`'s `key` through `ctx.foreign` in `check` and again in `apply`: refuses with
 * READER_MISMATCH unless it holds `value`, and records what it saw under its own `seen/<key>`.
 */
function createReaderModule(reads: readonly string[] | undefined): ReaderModule {
  const seen = (reader: ModuleStateReader, tx: ReaderTx): string => {
    const value = reader.get(tx.key);
    return value === null ? '' : new TextDecoder().decode(value);
  };
  const expect = (reader: ModuleStateReader, tx: ReaderTx): string => {
    const value = seen(reader, tx);
    const wanted = new TextDecoder().decode(tx.value);
    if (value !== wanted) {
      throw new ModuleError('READER_MISMATCH', 5, `saw ${JSON.stringify(value)}`);
    }
    return value;
  };
  const reader: ReaderModule = {
    name: 'reader',
    ...(reads === undefined ? {} : { reads }),
    stashed: undefined,
    decodeBody: (body) => decodeCanonical(body) as ReaderTx,
    check(ctx, tx) {
      assert.ok(ctx.foreign !== undefined, 'the router supplies foreign');
      if (tx.action === 'expect') expect(ctx.foreign(tx.module), tx);
    },
    apply(ctx, tx) {
      assert.ok(ctx.foreign !== undefined, 'the router supplies foreign');
      const foreign = ctx.foreign(tx.module);
      if (tx.action === 'write') (foreign as unknown as ModuleState).set(tx.key, tx.value);
      if (tx.action === 'stash') reader.stashed = foreign;
      const value = expect(foreign, tx);
      ctx.state.set(utf8(`seen/${new TextDecoder().decode(tx.key)}`), utf8(value));
    },
    query: () => undefined,
  };
  return reader;
}

const accepted = (result: TxCheckResult): void => {
  assert.ok(result.ok, result.ok ? '' : `${result.code}: ${result.message}`);
};

function refusedAtAdmission(result: TxCheckResult, code: string, message?: RegExp): void {
  assert.equal(result.ok, false, `expected ${code}`);
  if (result.ok) return;
  assert.equal(result.code, code, result.message);
  if (message !== undefined) assert.match(result.message, message);
}

function invalidConfig(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ApplicationError, String(error));
    assert.equal(error.code, ApplicationErrorCode.INVALID_CONFIG);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('cross-module reads (Module.reads, ctx.foreign)', () => {
  it('refuses at construction a read of no module, of itself, or listed twice', async () => {
    const node = await openNode();
    try {
      const build = (reads: readonly string[]) =>
        createApplication({
          chainId: CHAIN_ID,
          stampDifficulty: DIFFICULTY,
          state: node.store.state,
          modules: [createKvModule(), createProbeModule(), createReaderModule(reads)],
        });
      assert.throws(() => build(['dns']), invalidConfig(/reads "dns", which is no module/));
      assert.throws(() => build(['reader']), invalidConfig(/reads "reader", which is itself/));
      assert.throws(() => build(['probe', 'probe']), invalidConfig(/listed twice/));
      assert.doesNotThrow(() => build(['probe', 'kv']));
      assert.doesNotThrow(() => build([]));
    } finally {
      await node.close();
    }
  });

  it('reads the committed state at admission and the block so far in execution', async () => {
    const node = await openNode({
      modules: [createProbeModule(), createReaderModule(['probe'])],
    });
    try {
      const writer = makeSender();
      const reader = makeSender();
      node.executeAndCommit([tx(writer, probeBody('write', 'k', 'v1'), { module: 'probe' })]);

      // Admission: the committed value, under the probe module's prefix.
      const expectAt = (value: string) =>
        tx(reader, readerBody('expect', 'probe', 'k', value), {
          module: 'reader',
          sequence: reader.sequence,
        });
      accepted(node.app.checkTx(expectAt('v1')));
      refusedAtAdmission(node.app.checkTx(expectAt('v2')), 'READER_MISMATCH', /saw "v1"/);
      refusedAtAdmission(
        node.app.checkTx(
          tx(reader, readerBody('expect', 'probe', 'probe/k', 'v1'), {
            module: 'reader',
            sequence: reader.sequence,
          }),
        ),
        'READER_MISMATCH',
        /saw ""/,
      );

      // In a block: a write earlier in the block is seen, a refused one is not.
      const result = node.executeAndCommit([
        tx(writer, probeBody('write', 'k', 'v2'), { module: 'probe' }),
        tx(reader, readerBody('expect', 'probe', 'k', 'v2'), { module: 'reader' }),
        tx(writer, probeBody('refuse', 'k', 'v3'), { module: 'probe' }),
        tx(reader, readerBody('expect', 'probe', 'k', 'v2'), { module: 'reader' }),
        tx(reader, readerBody('expect', 'probe', 'k', 'v1'), { module: 'reader' }),
      ]);
      assert.deepEqual(
        result.txResults.map((r) => r.code),
        [0, 0, 7, 0, 5],
        result.txResults.map((r) => r.log).join(' | '),
      );
      assert.match(result.txResults[4]!.log, /^READER_MISMATCH: saw "v2"/);
      assert.equal(
        new TextDecoder().decode(node.store.state.get(utf8('reader/seen/k')) ?? new Uint8Array()),
        'v2',
      );
      // Committed now: admission sees the block's value.
      accepted(node.app.checkTx(expectAt('v2')));
    } finally {
      await node.close();
    }
  });

  it('throws (a fault, not a refusal) for a module it does not declare', async () => {
    const node = await openNode({
      modules: [createKvModule(), createProbeModule(), createReaderModule(['probe'])],
    });
    try {
      const reader = makeSender();
      const undeclared = tx(reader, readerBody('expect', 'kv', 'k'), {
        module: 'reader',
        sequence: 0,
      });
      refusedAtAdmission(
        node.app.checkTx(undeclared),
        ApplicationErrorCode.INTERNAL,
        /APP_INVALID_CONFIG.*does not declare in reads/,
      );
      assert.throws(
        () => node.app.executeBlock(blockAt(1, [undeclared])),
        invalidConfig(/module reader read module kv's state, which it does not declare/),
      );
    } finally {
      await node.close();
    }
  });

  it('cannot write through the reader, nor use it after the call', async () => {
    const reader = createReaderModule(['probe']);
    const node = await openNode({ modules: [createProbeModule(), reader] });
    try {
      const sender = makeSender();
      const writing = tx(sender, readerBody('write', 'probe', 'k', 'x'), {
        module: 'reader',
        sequence: 0,
      });
      assert.throws(() => node.app.executeBlock(blockAt(1, [writing])), TypeError);

      node.executeAndCommit([tx(sender, readerBody('stash', 'probe', 'k'), { module: 'reader' })]);
      const stashed = reader.stashed;
      assert.ok(stashed !== undefined);
      assert.equal('set' in stashed, false);
      assert.equal('delete' in stashed, false);
      assert.throws(
        () => stashed.get(utf8('k')),
        (error: unknown) =>
          error instanceof ApplicationError &&
          error.code === ApplicationErrorCode.STATE_VIEW_CLOSED,
      );
      assert.equal(node.store.state.get(utf8('probe/k')), null, 'nothing written');
    } finally {
      await node.close();
    }
  });

  it('gives a module without reads no foreign module', async () => {
    const node = await openNode({
      modules: [createProbeModule(), createReaderModule(undefined)],
    });
    try {
      const sender = makeSender();
      refusedAtAdmission(
        node.app.checkTx(
          tx(sender, readerBody('expect', 'probe', 'k'), { module: 'reader', sequence: 0 }),
        ),
        ApplicationErrorCode.INTERNAL,
        /does not declare in reads/,
      );
    } finally {
      await node.close();
    }
  });
});
