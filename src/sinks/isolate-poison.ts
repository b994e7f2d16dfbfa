/** One record the write rejected on its own, with the error the database gave for it. */
export interface Isolated<T> {
  item: T;
  error: Error;
}

/**
 * Finds the items of a failed batch that a write rejects, by bisection, without writing any item twice.
 *
 * `attempt` writes a subset inside its own savepoint: it resolves undefined when the subset was written, resolves the
 * row-level error when the subset was rolled back, and throws for any other failure (which ends the isolation). The
 * batch as a whole is known to fail. A failing set is split in halves, left first, so that written subsets keep
 * offset order; when the left half succeeds, the right half is known to fail and is split without being tried.
 * A single item is always tried, so every isolated item carries its own error. k bad items in n cost about
 * 1.5·k·log2(n/k) + 2k attempts, never more than 2n − 1.
 */
export async function isolatePoison<T>(
  items: readonly T[],
  attempt: (subset: readonly T[]) => Promise<Error | undefined>,
): Promise<Array<Isolated<T>>> {
  const isolated: Array<Isolated<T>> = [];
  const split = async (subset: readonly T[]): Promise<void> => {
    const mid = subset.length >>> 1;
    const left = subset.slice(0, mid);
    const right = subset.slice(mid);
    const leftWritten = await tryOrSplit(left);
    if (leftWritten && right.length > 1) await split(right);
    else await tryOrSplit(right);
  };
  /** Resolves true when the subset was written as a whole. */
  const tryOrSplit = async (subset: readonly T[]): Promise<boolean> => {
    if (subset.length === 0) return true;
    const error = await attempt(subset);
    if (!error) return true;
    if (subset.length === 1) isolated.push({ item: subset[0]!, error });
    else await split(subset);
    return false;
  };
  if (items.length === 1) await tryOrSplit(items);
  else if (items.length > 1) await split(items);
  return isolated;
}
