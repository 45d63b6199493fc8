//! Time, injected: the node reads the time through a [`Clock`] held by its store, so that
//! nodes in one process can run on a clock a test moves, and every time the node stamps comes
//! from one place.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Whole seconds since the Unix epoch.
    fn now_seconds(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    /// Milliseconds since the Unix epoch (0 before it, the largest time past `i64`).
    pub fn now_ms(&self) -> i64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemClock::now_ms(self)
    }
}

/// A clock that moves only when told to: for running nodes on simulated time.
#[derive(Debug)]
pub struct ManualClock {
    /// The time it shows (ms since the epoch).
    now_ms: AtomicI64,
}

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        ManualClock {
            now_ms: AtomicI64::new(now_ms),
        }
    }

    /// Moves the clock on by `ms` (never back).
    pub fn advance(&self, ms: i64) {
        self.now_ms.fetch_add(ms.max(0), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_forward_and_only_when_told() {
        let clock = ManualClock::new(1_800_000_000_999);
        assert_eq!(clock.now_seconds(), 1_800_000_000);
        clock.advance(1);
        clock.advance(-5_000);
        assert_eq!(clock.now_ms(), 1_800_000_001_000);
        assert_eq!(clock.now_seconds(), 1_800_000_001);
    }

    #[test]
    fn the_system_clock_is_past_2025() {
        assert!(SystemClock.now_ms() > 1_735_689_600_000);
    }
}
