/**
 * A received view that is kept (queued for a reader, or held while a frame is incomplete) pins
 * the whole buffer it points into: a 1-byte payload cut from a 16 KiB socket chunk holds 16 KiB.
 * A peer that sends tiny pieces spread over large chunks would make a node hold far more than
 * any window or limit counts. Views that cover less than half of their buffer are therefore
 * copied, so the memory a kept view holds is at most twice the bytes it counts; views that
 * cover most of their buffer (the common case of large messages) stay zero-copy.
 */
export function retainable(view: Uint8Array): Uint8Array {
  if (view.length * 2 >= view.buffer.byteLength) return view;
  // A plain Uint8Array of its own buffer (Buffer.from and Buffer#slice may share a pool).
  const copy = new Uint8Array(view.length);
  copy.set(view);
  return copy;
}
