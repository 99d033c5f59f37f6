/**
 * C2SP tlog-tiles coordinates (https://c2sp.org/tlog-tiles): tiles of height 8 (256 hashes)
 * at `tile/<L>/<N>[.p/<W>]` and entry bundles at `tile/entries/<N>[.p/<W>]`. `<N>` is written
 * in 3-digit groups, all but the last prefixed with `x` (1234067 → `x001/x234/067`).
 */
export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 2 ** TILE_HEIGHT;
/** tlog-tiles allows levels 0..63; with safe-integer sizes only levels up to 6 can be non-empty. */
export const MAX_TILE_LEVEL = 63;

export type TileCoordinate =
  | {
      readonly kind: 'hashes';
      readonly level: number;
      readonly index: number;
      readonly width: number;
    }
  | { readonly kind: 'entries'; readonly index: number; readonly width: number };

/** `<N>` as 3-digit path elements. */
export function formatTileIndex(index: number): string {
  let rest = index;
  let out = String(rest % 1000).padStart(3, '0');
  while (rest >= 1000) {
    rest = Math.floor(rest / 1000);
    out = `x${String(rest % 1000).padStart(3, '0')}/${out}`;
  }
  return out;
}

/** The path of a tile or entry bundle, without a leading slash. */
export function formatTilePath(tile: TileCoordinate): string {
  const partial = tile.width === TILE_WIDTH ? '' : `.p/${tile.width}`;
  const level = tile.kind === 'entries' ? 'entries' : String(tile.level);
  return `tile/${level}/${formatTileIndex(tile.index)}${partial}`;
}

const LEVEL = /^(0|[1-9][0-9]?)$/;
const WIDTH = /^[1-9][0-9]{0,2}$/;
const GROUP = /^x[0-9]{3}$/;
const LAST = /^[0-9]{3}$/;

/**
 * Parses a tile path (without a leading slash) strictly: only the canonical spelling of a
 * coordinate is accepted, so every tile has exactly one URL. Returns undefined for anything else.
 */
export function parseTilePath(path: string): TileCoordinate | undefined {
  const parts = path.split('/');
  if (parts.length < 3 || parts[0] !== 'tile') return undefined;
  const levelText = parts[1] as string;
  let rest = parts.slice(2);
  let width = TILE_WIDTH;
  const beforeLast = rest[rest.length - 2];
  if (beforeLast !== undefined && beforeLast.endsWith('.p')) {
    const widthText = rest[rest.length - 1] as string;
    if (!WIDTH.test(widthText) || Number(widthText) >= TILE_WIDTH) return undefined;
    width = Number(widthText);
    rest = [...rest.slice(0, -2), beforeLast.slice(0, -2)];
  }
  const last = rest[rest.length - 1] as string;
  if (!LAST.test(last) || !rest.slice(0, -1).every((group) => GROUP.test(group))) return undefined;
  let index = 0;
  for (const group of rest) index = index * 1000 + Number(group.replace('x', ''));
  if (!Number.isSafeInteger(index)) return undefined;
  let tile: TileCoordinate;
  if (levelText === 'entries') {
    tile = { kind: 'entries', index, width };
  } else {
    if (!LEVEL.test(levelText) || Number(levelText) > MAX_TILE_LEVEL) return undefined;
    tile = { kind: 'hashes', level: Number(levelText), index, width };
  }
  return formatTilePath(tile) === path ? tile : undefined;
}
