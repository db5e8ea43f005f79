//! The random draw behind retry jitter. The rule itself (how long retry n waits, and how a draw
//! lands in `[wait / 2, wait]`) is [`crate::policy::retry_delay_ms`]; this module only supplies
//! the draw, which is the one impure part.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::policy::{self, Backoff};

/// The wait before retry `n` (1-based) of a job with this backoff, jittered with a fresh draw.
pub fn delay_ms(n: i64, base_ms: i64, max_ms: i64, jitter: bool) -> i64 {
    let b = Backoff {
        base_ms,
        max_ms,
        jitter,
    };
    policy::retry_delay_ms(n, b, if jitter { unit_draw() } else { 0.0 })
}

/// A uniform number in `[0, 1)` from 53 random bits.
fn unit_draw() -> f64 {
    (next_random() >> 11) as f64 / (1u64 << 53) as f64
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
    fn jitter_stays_within_half_and_whole_and_spreads() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2_000 {
            let d = delay_ms(3, 100, 10_000, true);
            assert!((200..=400).contains(&d), "{d} outside [200, 400]");
            seen.insert(d);
        }
        assert!(
            seen.len() > 150,
            "jitter barely varies: {} distinct values",
            seen.len()
        );
    }

    #[test]
    fn without_jitter_is_the_nominal_wait() {
        assert_eq!(delay_ms(3, 100, 10_000, false), 400);
    }
}
