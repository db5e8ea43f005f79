//! How long a failed job waits before its next attempt. The JS core has a twin of this
//! (`src/core/js/`): keep the two formulas identical.
//!
//! Retry n (n = 1 for the first retry) waits `min(max, base * 2^(n-1))`; with jitter, a uniform
//! draw in `[wait / 2, wait]`, so retries of many jobs failing together spread out but never wait
//! less than half the nominal time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The nominal wait before retry `n` (1-based), without jitter.
pub fn nominal_delay_ms(n: i64, base_ms: i64, max_ms: i64) -> i64 {
    let base = base_ms.max(0);
    let max = max_ms.max(0);
    if base == 0 {
        return 0;
    }
    let exp = (n.max(1) - 1).min(62) as u32;
    // Saturating: a large n must clamp to max, not overflow.
    let wait = base.saturating_mul(1i64.checked_shl(exp).unwrap_or(i64::MAX));
    wait.min(max)
}

/// The wait before retry `n`, jittered into `[wait/2, wait]` when `jitter` is set.
pub fn delay_ms(n: i64, base_ms: i64, max_ms: i64, jitter: bool) -> i64 {
    let wait = nominal_delay_ms(n, base_ms, max_ms);
    if !jitter || wait <= 1 {
        return wait;
    }
    let half = wait / 2;
    half + (next_random() % ((wait - half + 1) as u64)) as i64
}

/// splitmix64 over a process-wide counter seeded from the clock: jitter needs spread, not
/// cryptographic quality, and this keeps the core free of a random-number dependency.
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut s = STATE.load(Ordering::Relaxed);
    if s == 0 {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
        let _ = STATE.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    s = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    let mut z = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_base_and_caps_at_max() {
        assert_eq!(nominal_delay_ms(1, 100, 10_000), 100);
        assert_eq!(nominal_delay_ms(2, 100, 10_000), 200);
        assert_eq!(nominal_delay_ms(3, 100, 10_000), 400);
        assert_eq!(nominal_delay_ms(8, 100, 10_000), 10_000);
        assert_eq!(nominal_delay_ms(500, 100, 10_000), 10_000);
        assert_eq!(nominal_delay_ms(1, 0, 10_000), 0);
    }

    #[test]
    fn without_jitter_is_exact() {
        for n in 1..10 {
            assert_eq!(
                delay_ms(n, 50, 5_000, false),
                nominal_delay_ms(n, 50, 5_000)
            );
        }
    }

    #[test]
    fn jitter_stays_within_half_and_whole_and_spreads() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2_000 {
            let d = delay_ms(3, 100, 10_000, true);
            assert!((200..=400).contains(&d), "{d} outside [200, 400]");
            seen.insert(d);
        }
        assert!(
            seen.len() > 50,
            "jitter barely varies: {} distinct values",
            seen.len()
        );
    }
}
