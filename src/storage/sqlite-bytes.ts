/**
 * better-sqlite3 returns BLOBs as Node `Buffer`s. The store hands out plain `Uint8Array` views
 * of the same memory (no copy), so values compare equal to bytes made anywhere else and no
 * caller comes to depend on Buffer-only methods.
 */
export function fromSqlite(blob: Uint8Array): Uint8Array {
  return new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength);
}

export function fromSqliteOrNull(blob: Uint8Array | null | undefined): Uint8Array | null {
  return blob === null || blob === undefined ? null : fromSqlite(blob);
}
