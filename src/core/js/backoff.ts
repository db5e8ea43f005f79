/** Retry backoff: the JS twin of crates/core/src/backoff.rs. */

/**
 * The wait before retry `n` (n = 1 for the first retry): `min(max, base * 2^(n-1))`; with jitter,
 * drawn uniformly from [half of that, all of it] so that jobs failing together do not retry together.
 */
export function backoffDelay(n: number, baseMs: number, maxMs: number, jitter: boolean, random: () => number = Math.random): number {
  const base = Math.max(0, baseMs)
  if (base === 0) return 0
  const exp = Math.min(62, Math.max(1, n) - 1)
  // 2^exp may exceed 2^53 for large n; min() brings it back to maxMs long before that matters.
  const wait = Math.floor(Math.min(Math.max(0, maxMs), base * 2 ** exp))
  if (!jitter || wait <= 1) return wait
  // Integer draw in [floor(wait/2), wait], both ends included, as the native core draws it.
  const half = Math.floor(wait / 2)
  return half + Math.floor(random() * (wait - half + 1))
}
