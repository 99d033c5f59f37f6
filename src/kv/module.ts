import { bytesEqual, toHex } from '../crypto/bytes.js';
import type {
  CheckContext,
  ExecutionContext,
  Module,
  ModuleQueryAnswer,
  ModuleStateReader,
} from '../consensus/application/module.js';
import { checkKvKey, decodeKvBody } from './body.js';
import { KV_MODULE_NAME, decodeKvEntry, encodeKvEntry } from './entry.js';
import type { KvEntry, KvTx } from './entry.js';
import { KvError, KvErrorCode } from './errors.js';

/** Query paths of the module (`kv/<path>`). */
export const KV_GET_QUERY = 'get';

function readEntry(state: ModuleStateReader, key: Uint8Array): KvEntry | null {
  const stored = state.get(key);
  return stored === null ? null : decodeKvEntry(stored);
}

/**
 * Ownership: a key belongs to the sender that created it. Only the owner may overwrite or
 * delete it; once deleted, anyone may create it again.
 */
function authorize(tx: KvTx, entry: KvEntry | null, sender: Uint8Array): void {
  if (entry === null) {
    if (tx.op === 'delete') {
      throw new KvError(KvErrorCode.NOT_FOUND, 'kv delete: the key does not exist', {
        key: toHex(tx.key),
      });
    }
    return;
  }
  if (!bytesEqual(entry.owner, sender)) {
    throw new KvError(
      KvErrorCode.NOT_OWNER,
      `kv ${tx.op}: the key belongs to ${toHex(entry.owner)}, not to the sender`,
      { key: toHex(tx.key), owner: toHex(entry.owner) },
    );
  }
}

/**
 * The key-value module: `set` and `delete` of byte keys owned by their creator, and `get` with
 * a state proof. Its keys live under `kv/`; the value at `kv/<key>` is the entry
 * `{owner, value}` (entry.ts).
 */
export function createKvModule(): Module<KvTx> {
  return {
    name: KV_MODULE_NAME,
    decodeBody: decodeKvBody,
    check(ctx: CheckContext, tx: KvTx, sender: Uint8Array): void {
      authorize(tx, readEntry(ctx.state, tx.key), sender);
    },
    apply(ctx: ExecutionContext, tx: KvTx, sender: Uint8Array): void {
      const entry = readEntry(ctx.state, tx.key);
      authorize(tx, entry, sender);
      if (tx.op === 'delete') {
        ctx.state.delete(tx.key);
      } else {
        ctx.state.set(tx.key, encodeKvEntry({ owner: entry?.owner ?? sender, value: tx.value }));
      }
    },
    query(path: string, data: Uint8Array): ModuleQueryAnswer | undefined {
      if (path !== KV_GET_QUERY) return undefined;
      try {
        return { key: checkKvKey(data) };
      } catch (error) {
        if (!(error instanceof KvError)) throw error;
        throw new KvError(KvErrorCode.INVALID_QUERY, `kv/get: ${error.message}`);
      }
    },
  };
}
