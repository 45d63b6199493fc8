//! Per-peer sync state as pure state machines: when to open the next session with a peer,
//! where it resumes, and when the peer's failures put it in quarantine. No IO and no clock:
//! every input carries `now` (ms since the epoch), so the client's tasks, the in-process
//! transport of the tests and the unit tests below drive the same code (the shape of
//! raft-rs's `RawNode`: feed in what happened, ask what to do next).

use serde::{Deserialize, Serialize};

/// What a peer's session loop does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Open a session now, pulling after `cursor`.
    Connect {
        /// The arrival position of the peer's log received up to.
        cursor: u64,
    },
    /// Wait until `at_ms`, then ask again.
    Wait {
        /// When the next attempt is due (ms since the epoch).
        at_ms: i64,
    },
    /// Stop: the peer is quarantined until an operator releases it.
    Stop,
}

/// One peer's session loop: its resume cursor and its backoff. The session starts at the
/// cursor, each accepted segment moves it, and a failed session is retried after a delay that
/// doubles from `retry_ms_min` up to `retry_ms_max` and falls back to the minimum once a
/// segment goes through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSync {
    /// Where the next session resumes.
    cursor: u64,
    /// The delay before the retry after the next failure.
    delay_ms: u64,
    /// The first and the longest delay.
    retry_ms: (u64, u64),
    /// When the next session may start (ms since the epoch).
    due_ms: i64,
    /// The peer is quarantined.
    quarantined: bool,
}

impl PeerSync {
    /// A peer received up to `cursor`, due now, with retry delays from `retry_ms_min` to
    /// `retry_ms_max`.
    pub fn new(cursor: u64, retry_ms_min: u64, retry_ms_max: u64) -> Self {
        PeerSync {
            cursor,
            delay_ms: retry_ms_min,
            retry_ms: (retry_ms_min, retry_ms_max.max(retry_ms_min)),
            due_ms: i64::MIN,
            quarantined: false,
        }
    }

    /// What to do at `now_ms`.
    pub fn next(&self, now_ms: i64) -> Next {
        match (self.quarantined, now_ms >= self.due_ms) {
            (true, _) => Next::Stop,
            (false, true) => Next::Connect {
                cursor: self.cursor,
            },
            (false, false) => Next::Wait { at_ms: self.due_ms },
        }
    }

    /// The cursor the next session resumes at.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// A segment of the current session was wholly accepted; `cursor` is the sender's
    /// arrival position it covers up to. A refused segment is not reported: the cursor stays
    /// and the session ends with a failure.
    pub fn accepted(&mut self, cursor: u64) {
        // A cursor never goes back: a sender restarting from an older position resends what
        // the receiver holds, and ingest is idempotent.
        self.cursor = self.cursor.max(cursor);
        self.delay_ms = self.retry_ms.0;
    }

    /// The session ended at `now_ms`: `failed` when it ended by an error (a refused or
    /// deferred segment, a lost connection, a peer gone), and `quarantined` when the peer's
    /// failures have put it in quarantine. A session that ends without failure (a push-only
    /// peer caught up) is due again at once.
    pub fn ended(&mut self, now_ms: i64, failed: bool, quarantined: bool) {
        self.quarantined = quarantined;
        if !failed {
            self.due_ms = now_ms;
            self.delay_ms = self.retry_ms.0;
            return;
        }
        let delay = i64::try_from(self.delay_ms).unwrap_or(i64::MAX);
        self.due_ms = now_ms.saturating_add(delay);
        self.delay_ms = self.delay_ms.saturating_mul(2).min(self.retry_ms.1);
    }
}

/// The failures a peer caused recently: a peer is quarantined once `max` of them fall within
/// `window_ms`, whatever succeeded in between (a peer alternating good and bad segments is
/// quarantined as surely as one sending only bad ones). Stored with the peer's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureWindow {
    /// Times of the failures still in the window, oldest first (ms since the epoch).
    times_ms: Vec<i64>,
}

impl FailureWindow {
    /// Records a failure at `now_ms`; true when `max` failures now fall within the window
    /// that ends at `now_ms`.
    pub fn record(&mut self, now_ms: i64, window_ms: i64, max: u32) -> bool {
        self.forget_before(now_ms.saturating_sub(window_ms));
        self.times_ms.push(now_ms);
        // Only the last `max` can matter for the next decision.
        let keep = usize::try_from(max).unwrap_or(usize::MAX).max(1);
        if self.times_ms.len() > keep {
            self.times_ms.drain(..self.times_ms.len() - keep);
        }
        self.times_ms.len() >= keep
    }

    /// Failures within the window that ends at `now_ms`.
    pub fn count(&self, now_ms: i64, window_ms: i64) -> u32 {
        let start = now_ms.saturating_sub(window_ms);
        let count = self.times_ms.iter().filter(|time| **time > start).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Forgets every failure (an operator released the peer).
    pub fn clear(&mut self) {
        self.times_ms.clear();
    }

    fn forget_before(&mut self, start_ms: i64) {
        self.times_ms.retain(|time| *time > start_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 250;
    const MAX: u64 = 30_000;
    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn retries_double_up_to_the_longest_delay_and_reset_after_a_good_segment() {
        let mut sync = PeerSync::new(0, MIN, MAX);
        assert_eq!(sync.next(T0), Next::Connect { cursor: 0 });
        let mut now = T0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            sync.ended(now, true, false);
            let Next::Wait { at_ms } = sync.next(now) else {
                panic!("a failed session is retried later");
            };
            waits.push(at_ms - now);
            assert_eq!(sync.next(at_ms - 1), Next::Wait { at_ms });
            now = at_ms;
            assert_eq!(sync.next(now), Next::Connect { cursor: 0 });
        }
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]
        );
        sync.accepted(7);
        sync.ended(now, true, false);
        assert_eq!(sync.next(now), Next::Wait { at_ms: now + 250 });
    }

    #[test]
    fn sessions_resume_after_the_last_accepted_segment() {
        let mut sync = PeerSync::new(40, MIN, MAX);
        assert_eq!(sync.next(T0), Next::Connect { cursor: 40 });
        sync.accepted(52);
        sync.accepted(60);
        // The next segment is refused: the session ends with a failure.
        sync.ended(T0, true, false);
        assert_eq!(sync.next(T0 + 250), Next::Connect { cursor: 60 });
        // A sender that restarts from an older position cannot move the cursor back.
        sync.accepted(55);
        assert_eq!(sync.cursor(), 60);
        // A push-only session that ends cleanly is due again at once.
        sync.ended(T0 + 300, false, false);
        assert_eq!(sync.next(T0 + 300), Next::Connect { cursor: 60 });
    }

    #[test]
    fn a_quarantined_peer_stops_for_good() {
        // Released by an operator, the peer gets a new task and a new state machine.
        let mut sync = PeerSync::new(3, MIN, MAX);
        sync.ended(T0, true, true);
        assert_eq!(sync.next(T0), Next::Stop);
        assert_eq!(sync.next(T0 + 86_400_000), Next::Stop);
    }

    #[test]
    fn failures_count_within_the_window_whatever_succeeds_between_them() {
        const WINDOW: i64 = 3_600_000;
        let mut window = FailureWindow::default();
        // Four failures a quarter of an hour apart: inside one hour, not yet five.
        for n in 0..4 {
            assert!(!window.record(T0 + n * 900_000, WINDOW, 5));
        }
        assert_eq!(window.count(T0 + 2_700_000, WINDOW), 4);
        // The fifth within the hour of the second quarantines, even though the first has
        // left the window.
        assert!(!window.record(T0 + 3_600_000, WINDOW, 5));
        assert_eq!(window.count(T0 + 3_600_000, WINDOW), 4);
        assert!(window.record(T0 + 3_700_000, WINDOW, 5));
    }

    #[test]
    fn failures_further_apart_than_the_window_never_quarantine() {
        const WINDOW: i64 = 60_000;
        let mut window = FailureWindow::default();
        for n in 0..100 {
            assert!(!window.record(T0 + n * 15_001, WINDOW, 5));
        }
        assert_eq!(window.count(T0 + 99 * 15_001, WINDOW), 4);
        window.clear();
        assert_eq!(window.count(T0 + 99 * 15_001, WINDOW), 0);
    }
}
