// Small helpers on plain arrays that several floors need; nothing here knows what the items are.

/** The distinct items, each where it first appears. */
export function uniqueInOrder<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}
