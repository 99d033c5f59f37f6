import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  EVENT_LIMITS,
  ModuleError,
  type ExecutionContext,
  type Module,
} from '../../../src/consensus/application/index.js';
import { blockAt, makeSender, openNode, tx } from './fixture.js';

/**
 * Transaction events: what a module emits while applying a transaction reaches the block's
 * results with the module's name as prefix, only when the transaction applies; a module that
 * breaks the limits has a bug, which fails the block like any other fault.
 */

type Emit = (ctx: ExecutionContext, body: number) => void;

class Refused extends ModuleError {
  constructor() {
    super('EMITTER_REFUSED', 3, 'refused after emitting');
  }
}

function emitter(emit: Emit): Module<number> {
  return {
    name: 'emitter',
    decodeBody: (bytes) => bytes[0] ?? 0,
    check: () => undefined,
    apply: (ctx, body) => {
      emit(ctx, body);
      if (body === 9) throw new Refused();
    },
    query: () => undefined,
  };
}

const account = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);

describe('application router: transaction events', () => {
  it('keeps the events of applied transactions, prefixed, and drops those of refused ones', async () => {
    const node = await openNode({
      modules: [
        emitter((ctx, body) => {
          ctx.emit?.('moved', { amount: String(body), height: String(ctx.height) }, [
            account(1),
            account(2),
          ]);
          if (body === 2) ctx.emit?.('noted', {});
        }),
      ],
    });
    try {
      const sender = makeSender();
      const txs = [1, 2, 9].map((body, i) =>
        tx(sender, Uint8Array.of(body), { module: 'emitter', sequence: i }),
      );
      const result = node.app.executeBlock(blockAt(1, txs));
      const [first, second, refused] = result.txResults;
      assert.deepEqual(first?.events, [
        {
          type: 'emitter/moved',
          attributes: { amount: '1', height: '1' },
          accounts: [account(1), account(2)],
        },
      ]);
      assert.deepEqual(
        second?.events?.map((event) => event.type),
        ['emitter/moved', 'emitter/noted'],
      );
      assert.equal(refused?.code, 3);
      assert.equal(refused?.events, undefined);
    } finally {
      await node.close();
    }
  });

  it('a module that breaks the event limits fails the block', async () => {
    const cases: [Emit, RegExp][] = [
      [(ctx) => ctx.emit?.('Bad Name', {}), /lowercase letters/],
      [(ctx) => ctx.emit?.('ok', { 'bad key': 'x' }), /attribute key/],
      [(ctx) => ctx.emit?.('ok', { big: 'x'.repeat(EVENT_LIMITS.valueChars + 1) }), /at most/],
      [
        (ctx) =>
          ctx.emit?.(
            'ok',
            Object.fromEntries(
              Array.from({ length: EVENT_LIMITS.attributesPerEvent + 1 }, (_, i) => [`k${i}`, '']),
            ),
          ),
        /more than 16 attributes/,
      ],
      [(ctx) => ctx.emit?.('ok', {}, [new Uint8Array(0)]), /byte strings/],
      [
        (ctx) => {
          for (let i = 0; i <= EVENT_LIMITS.eventsPerTx; i++) ctx.emit?.('ok', {});
        },
        /more than 32 events/,
      ],
    ];
    for (const [emit, message] of cases) {
      const node = await openNode({ modules: [emitter(emit)] });
      try {
        const sender = makeSender();
        assert.throws(
          () =>
            node.app.executeBlock(
              blockAt(1, [tx(sender, Uint8Array.of(1), { module: 'emitter' })]),
            ),
          message,
        );
      } finally {
        await node.close();
      }
    }
  });
});
