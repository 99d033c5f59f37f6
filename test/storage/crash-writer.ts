/**
 * Child process for crash.test.ts: writes blocks (100 state changes each) and consensus WAL
 * records as fast as it can until it is killed, reporting each durable step on stdout only
 * after the call that made it durable has returned.
 *
 *   voted <height>          the WAL append for <height> returned
 *   saved <height> <root>   saveBlock for <height> returned
 *   ended <height>          the WAL checkpoint for <height> returned
 */
import { encodeCanonical } from '../../src/codec/cbor.js';
import { openConsensusWal } from '../../src/storage/consensus-wal.js';
import { openStore } from '../../src/storage/store.js';
import { hex, nextBlock, text } from './chain-fixture.js';

const [storePath, walPath] = process.argv.slice(2);
if (storePath === undefined || walPath === undefined) {
  process.stderr.write('usage: crash-writer <store> <wal>\n');
  process.exit(2);
}

const store = openStore(storePath);
const wal = openConsensusWal(walPath);
const KEY_SPACE = 20_000;

for (;;) {
  const height = (store.blocks.latestHeight() ?? 0) + 1;
  wal.append({ type: 1, payload: new Uint8Array(encodeCanonical({ height, vote: 'precommit' })) });
  process.stdout.write(`voted ${height}\n`);
  const stateChanges = Array.from({ length: 100 }, (_, i) => {
    const k = (height * 7_919 + i * 104_729) % KEY_SPACE;
    return {
      key: text(`account/${k}`),
      value: i % 10 === 9 ? null : text(`balance ${height * 1000 + i}`),
    };
  });
  const saved = store.saveBlock(nextBlock(store, { stateChanges }));
  process.stdout.write(`saved ${height} ${hex(saved.stateRoot)}\n`);
  wal.endHeight(height);
  process.stdout.write(`ended ${height}\n`);
}
