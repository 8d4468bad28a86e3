//! Rate limits per caller (the agent of a valid bearer token) and per client address, with the
//! generic cell rate algorithm (GCRA) in integer nanoseconds: each key keeps one number, the
//! time its next request is due, so a limit costs one map lookup under a short lock.
//!
//! Limits are kept in each instance's memory: behind a load balancer with N instances a
//! client can reach N times the rate (the balancer's own limits, or sticky routing, cover
//! that); the database is never touched, so a flood cannot load it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Nanoseconds in a second.
const NANOS: u64 = 1_000_000_000;
/// Keys kept before those no longer limiting anything are dropped.
const PRUNE_AT: usize = 100_000;

/// A rate: `per_second` on average, with bursts of up to `burst` at once.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Nanoseconds between requests at the average rate.
    interval: u64,
    /// How far ahead of schedule a key may run: `(burst - 1) × interval`.
    tolerance: u64,
}

impl Limit {
    /// `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        if per_second == 0 {
            return None;
        }
        let interval = (NANOS / u64::from(per_second)).max(1);
        Some(Self {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst.max(1)) - 1),
        })
    }
}

/// The limiter of one instance.
#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    /// Per client address.
    pub per_ip: Option<Limit>,
    /// Per authenticated agent.
    pub per_agent: Option<Limit>,
    due: Mutex<HashMap<String, u64>>,
}

impl RateLimiter {
    /// A limiter with these limits (`None`: unlimited).
    pub fn new(per_ip: Option<Limit>, per_agent: Option<Limit>) -> Self {
        Self {
            start: Instant::now(),
            per_ip,
            per_agent,
            due: Mutex::new(HashMap::new()),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts a request against `key`: `Ok` if it may go ahead, else `Err(seconds)` to wait
    /// before the next one will (at least 1).
    pub fn check(&self, key: &str, limit: Limit) -> Result<(), u64> {
        self.check_at(key, limit, self.now())
    }

    fn check_at(&self, key: &str, limit: Limit, now: u64) -> Result<(), u64> {
        // A poisoned lock only means another request panicked mid-update of a number.
        let mut due = self
            .due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tat = due.get(key).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > limit.tolerance {
            let wait = ahead - limit.tolerance;
            return Err(wait.div_ceil(NANOS).max(1));
        }
        if due.len() >= PRUNE_AT && !due.contains_key(key) {
            due.retain(|_, t| *t > now);
        }
        due.insert(key.to_owned(), tat.saturating_add(limit.interval));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(None, None)
    }

    #[test]
    fn bursts_then_the_average_rate() {
        let l = limiter();
        let limit = Limit::new(10, 3).expect("limit");
        let t0 = 5 * NANOS;
        for _ in 0..3 {
            assert!(l.check_at("a", limit, t0).is_ok());
        }
        assert_eq!(l.check_at("a", limit, t0), Err(1));
        // Another key is not affected.
        assert!(l.check_at("b", limit, t0).is_ok());
        // One interval (100 ms) later, one more request goes through, then none.
        let t1 = t0 + NANOS / 10;
        assert!(l.check_at("a", limit, t1).is_ok());
        assert!(l.check_at("a", limit, t1).is_err());
        // After a quiet second the full burst is back.
        let t2 = t1 + NANOS;
        for _ in 0..3 {
            assert!(l.check_at("a", limit, t2).is_ok());
        }
        assert!(l.check_at("a", limit, t2).is_err());
    }

    #[test]
    fn retry_after_is_the_wait_in_whole_seconds() {
        let l = limiter();
        let limit = Limit::new(1, 1).expect("limit");
        assert!(l.check_at("a", limit, 0).is_ok());
        assert_eq!(l.check_at("a", limit, 0), Err(1));
        let slow = Limit::new(1, 1).expect("limit");
        let l2 = limiter();
        assert!(l2.check_at("k", slow, 0).is_ok());
        assert_eq!(l2.check_at("k", slow, NANOS / 2), Err(1));
        assert!(l2.check_at("k", slow, NANOS).is_ok());
    }

    #[test]
    fn zero_is_no_limit() {
        assert!(Limit::new(0, 10).is_none());
    }

    #[test]
    fn stale_keys_are_pruned() {
        let l = limiter();
        let limit = Limit::new(1000, 1).expect("limit");
        for i in 0..PRUNE_AT {
            assert!(l.check_at(&i.to_string(), limit, 0).is_ok());
        }
        assert!(l.check_at("new", limit, 10 * NANOS).is_ok());
        let size = l.due.lock().expect("lock").len();
        assert_eq!(size, 1);
    }
}
