/** Retry backoff: the JS twin of crates/core/src/backoff.rs. */

/**
 * The wait before retry `n` (n = 1 for the first retry): `min(max, base * 2^(n-1))`; with jitter,
 * drawn uniformly from [half of that, all of it] so that jobs failing together do not retry together.
 */
export function backoffDelay(n: number, baseMs: number, maxMs: number, jitter: boolean, random: () => number = Math.random): number {
  const exp = Math.max(0, n - 1)
  // 2^exp overflows to Infinity long before it matters; min() brings it back to maxMs.
  const full = Math.min(maxMs, baseMs * 2 ** exp)
  if (!jitter || full <= 0) return Math.floor(full)
  const half = full / 2
  return Math.floor(half + random() * (full - half))
}
