/**
 * Where a name lands in one zone (RFC 1034 §4.3.2 step 3, RFC 4592 §3.3.1): its own node, else
 * the closest encloser and the wildcard a record is synthesised from, and the zone cut above it.
 * Shared by the answer engine (over a compiled `Zone`) and by readers of zone data kept
 * elsewhere (the `ca` module reads the `dns` module's state through it), so every path that
 * decides "what would a query for this name see" decides it the same way.
 */

/** A name that exists in a zone: it holds records, or is an empty non-terminal above one. */
export interface ZoneTreeNode<N> {
  /** NS here, below the apex: a zone cut (RFC 1034 §4.2.1). */
  readonly delegation: boolean;
  /** The node `*.<this name>`, when it exists (the RFC 4592 source of synthesis). */
  readonly wildcard: N | undefined;
}

/** A zone as the walk reads it. `Zone` (zone.ts) is one. */
export interface ZoneTree<N extends ZoneTreeNode<N>> {
  readonly apexKey: string;
  /** False only when no name below the apex has NS (the walk then stops at the encloser). */
  readonly hasDelegations: boolean;
  /** The node at `key` (a DNS core key at or below the apex), if the name exists. */
  node(key: string): N | undefined;
}

/** What the walk found; callers pass one in to be filled (the answer engine reuses one). */
export interface NameLookup<N> {
  /** The name's own node, when it exists. */
  node: N | undefined;
  /** The closest encloser (RFC 4592 §3.3.1): the node itself, else its closest existing ancestor. */
  encloser: N | undefined;
  /**
   * The highest zone cut strictly between the apex and the name, or at the name unless `ds`
   * (a DS query at a cut is answered from the parent side, RFC 4035 §3.1.4.1). Set: a referral.
   */
  cut: N | undefined;
  /**
   * For a name that does not exist, the wildcard at its closest encloser (none at a delegation):
   * what the answer is synthesised from, under the name asked for (RFC 4592 §3.3.1). An empty
   * non-terminal name exists, so it blocks synthesis.
   */
  wildcard: N | undefined;
}

/** An empty result, to be filled by `lookupName`. */
export function emptyLookup<N>(): NameLookup<N> {
  return { node: undefined, encloser: undefined, cut: undefined, wildcard: undefined };
}

/**
 * Looks `key` (at or below `zone.apexKey`) up in `zone`, filling `into`: the node, else its
 * closest encloser and that encloser's wildcard, and the highest cut above. Reads the nodes of
 * the name and of its ancestors, closest first, no further than the apex; pure given `zone`.
 */
export function lookupName<N extends ZoneTreeNode<N>>(
  zone: ZoneTree<N>,
  key: string,
  ds: boolean,
  into: NameLookup<N>,
): NameLookup<N> {
  into.node = undefined;
  into.encloser = undefined;
  into.cut = undefined;
  into.wildcard = undefined;
  const apexLength = zone.apexKey.length;
  for (let at = 0; key.length - at >= apexLength; at += key.charCodeAt(at) + 1) {
    const node = zone.node(at === 0 ? key : key.slice(at));
    if (node === undefined) continue;
    if (into.encloser === undefined) {
      into.encloser = node;
      if (at === 0) into.node = node;
      else if (!node.delegation) into.wildcard = node.wildcard;
      if (!zone.hasDelegations) return into;
    }
    if (node.delegation && key.length - at > apexLength && !(at === 0 && ds)) into.cut = node;
  }
  return into;
}
