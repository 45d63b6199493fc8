//! Fair turns at the node's work, so that one client flooding the node cannot take the CPU
//! that other clients need.
//!
//! Each piece of blocking work a client asks for (a REST request's reads, appends, searches
//! and rendering; a peer's segments produced and received, its proofs and reveals) runs in a
//! [`Turn`]. At most `workers` turns are held at once, and at most half of them by one
//! [`Tenant`], so one tenant's work leaves CPUs free for the others'; a client asking while
//! none is free to it waits, and a freed turn goes to the waiting tenant that holds the fewest
//! turns, and among those to the one that used the least of the node's work lately (then the
//! earliest). So a client with one request waiting is served before a client with many
//! running, and a client asking now and then before one that keeps the node busy. Work that
//! runs long (a broad search, a segment of a peer's pull) calls [`pause_point`] as it goes:
//! while a tenant holding fewer turns waits, the long work hands its turn over and queues
//! again, so it takes its share of the CPU rather than all of it.
//!
//! Turns share the node's workers; the CPUs they run on are the operating system's to share,
//! with the node's connections and its peers' streams. So that a tenant that keeps the node
//! busy (a flood of broad searches, a peer catching up on a long log) cannot slow the others'
//! work there either, the work of a tenant that used more than [`HEAVY_SHARE`] of a worker
//! lately is *heavy*: it runs on threads of lower CPU priority ([`crate::workers`]), where it
//! gets every CPU the others leave and yields at once when they need one, and its turns are
//! counted apart: `workers` turns of heavy work and `workers` of light work may be held at
//! once, so a light client's request never waits for a heavy tenant's slice to end.
//!
//! A thread runs in the turn it was given by [`Turn::run`]; [`pause_point`] outside a turn (the
//! CLI, background tasks) does nothing.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::log::OriginKey;
use crate::workers::{self, Panicked, Priority};

/// Whom work is charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tenant {
    /// An authenticated user, by their local numeric id.
    User(u64),
    /// A paired peer, by its node key: its pull streams, pushes and requests.
    Peer(OriginKey),
    /// Work no user or peer asked for.
    Node,
}

/// The turns of one node: at most `workers` held at once, handed out fairly between tenants.
#[derive(Clone)]
pub struct Turns {
    shared: Arc<Mutex<Shared>>,
}

/// What the turns share: how many are held, by whom, and who waits.
struct Shared {
    /// Most turns held at once.
    workers: usize,
    /// Most turns one tenant holds at once, so that the rest of the CPUs stay free for
    /// others: half the workers (at least one).
    per_tenant: usize,
    /// Turns held, of light and of heavy work ([`Class`]).
    running: [usize; 2],
    /// Turns held per tenant (tenants holding none are absent).
    held: HashMap<Tenant, usize>,
    /// Work time each tenant used lately, decaying by half every [`USAGE_HALF_LIFE`].
    used: HashMap<Tenant, Decaying>,
    /// Who waits, in arrival order.
    waiting: VecDeque<Waiter>,
}

/// Least time work keeps its turn before a [`pause_point`] may hand it over: shorter slices
/// serve waiting tenants sooner, longer ones switch threads less often.
pub const SLICE: Duration = Duration::from_millis(2);

/// How fast past use of the node's work is forgotten: a tenant's work time counts half after
/// this long, a quarter after twice as long.
pub const USAGE_HALF_LIFE: Duration = Duration::from_secs(1);

/// Share of one worker's time a tenant may have used lately (over about a
/// [`USAGE_HALF_LIFE`]) and still have its work run at the node's CPU priority.
pub const HEAVY_SHARE: f64 = 0.5;

/// Tenants whose lately used work time is remembered before the ones with next to none are
/// forgotten.
const USAGE_REMEMBERED: usize = 1024;

/// An amount (work time, a count) that halves every given half-life, as of an instant.
#[derive(Clone, Copy, Debug)]
pub struct Decaying {
    amount: f64,
    at: Instant,
}

impl Decaying {
    /// `amount` as of `at`.
    pub fn new(amount: f64, at: Instant) -> Self {
        Decaying { amount, at }
    }

    /// The amount left at `now`, halving every `half_life`.
    pub fn at(self, now: Instant, half_life: Duration) -> f64 {
        let ago = now.saturating_duration_since(self.at).as_secs_f64();
        self.amount * 0.5f64.powf(ago / half_life.as_secs_f64())
    }

    /// The amount left at `now` plus `more`, as of `now`.
    pub fn add(self, now: Instant, half_life: Duration, more: f64) -> Self {
        Decaying::new(self.at(now, half_life) + more, now)
    }
}

/// A tenant waiting for a turn, and where to send it.
struct Waiter {
    tenant: Tenant,
    grant: oneshot::Sender<Turn>,
}

/// One turn held by a tenant, given back (to the fairest waiter) when dropped.
pub struct Turn {
    /// The turns it belongs to; `None` once given back.
    shared: Option<Arc<Mutex<Shared>>>,
    tenant: Tenant,
    /// The class of work it was given for.
    class: Class,
    /// When it was given.
    given: Instant,
}

/// The class of a tenant's work when it was given a turn: each class has `workers` turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// A tenant that used at most [`HEAVY_SHARE`] of a worker lately.
    Light = 0,
    /// A tenant that used more: its work runs at lower CPU priority.
    Heavy = 1,
}

impl Class {
    /// The CPU priority of work of this class.
    fn priority(self) -> Priority {
        match self {
            Class::Light => Priority::Normal,
            Class::Heavy => Priority::Lower,
        }
    }
}

/// Why no turn was given: the turns were dropped while waiting (the node is stopping).
#[derive(Debug, thiserror::Error)]
#[error("the node stopped handing out turns at its work")]
pub struct Stopped;

/// Why work given to [`Turns::blocking`] did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Unfinished {
    /// It was given no turn: the node is stopping.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// It panicked.
    #[error(transparent)]
    Aborted(#[from] Panicked),
}

thread_local! {
    /// The turn the current thread's work runs in.
    static CURRENT: RefCell<Option<Turn>> = const { RefCell::new(None) };
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Turns {
    /// At most `workers` turns at once, 0 meaning one per CPU.
    pub fn new(workers: usize) -> Self {
        let workers = match workers {
            0 => std::thread::available_parallelism().map_or(2, |cpus| cpus.get()),
            workers => workers,
        };
        Turns {
            shared: Arc::new(Mutex::new(Shared {
                workers: workers.max(1),
                per_tenant: (workers / 2).max(1),
                running: [0, 0],
                held: HashMap::new(),
                used: HashMap::new(),
                waiting: VecDeque::new(),
            })),
        }
    }

    /// A turn for `tenant`: at once when one is free and nobody it must yield to waits,
    /// otherwise when the fair order reaches it.
    pub async fn turn(&self, tenant: Tenant) -> Result<Turn, Stopped> {
        let granted = {
            let mut shared = lock(&self.shared);
            let (grant, granted) = oneshot::channel();
            shared.waiting.push_back(Waiter { tenant, grant });
            shared.dispatch(&self.shared);
            granted
        };
        granted.await.map_err(|_| Stopped)
    }

    /// Runs `work` on a worker thread in a turn of `tenant` (so that [`pause_point`]
    /// can share it), once the fair order reaches it: the way node work that blocks (RocksDB
    /// reads, synced appends) runs without stalling the async workers.
    pub async fn blocking<T: Send + 'static>(
        &self,
        tenant: Tenant,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Unfinished> {
        let turn = self.turn(tenant).await?;
        let priority = turn.class.priority();
        Ok(workers::run(priority, move || turn.run(work)).await?)
    }

    /// Turns held now, in total and by `tenant`.
    pub fn held(&self, tenant: Tenant) -> (usize, usize) {
        let shared = lock(&self.shared);
        (
            shared.running.iter().sum(),
            shared.held.get(&tenant).copied().unwrap_or(0),
        )
    }
}

impl Shared {
    /// Counts one more turn of `class` held by `tenant`.
    fn take(&mut self, tenant: Tenant, class: Class) {
        self.running[class as usize] += 1;
        *self.held.entry(tenant).or_insert(0) += 1;
    }

    /// Counts one turn of `class` of `tenant` given back after it was used for `worked`.
    fn give_back(&mut self, tenant: Tenant, class: Class, worked: Duration) {
        let now = Instant::now();
        if self.used.len() >= USAGE_REMEMBERED && !self.used.contains_key(&tenant) {
            let held = &self.held;
            self.used.retain(|tenant, usage| {
                held.contains_key(tenant) || usage.at(now, USAGE_HALF_LIFE) > 1e-3
            });
        }
        let usage = self.used.entry(tenant).or_insert(Decaying::new(0.0, now));
        *usage = usage.add(now, USAGE_HALF_LIFE, worked.as_secs_f64());
        self.running[class as usize] = self.running[class as usize].saturating_sub(1);
        if let Some(count) = self.held.get_mut(&tenant) {
            *count -= 1;
            if *count == 0 {
                self.held.remove(&tenant);
            }
        }
    }

    /// Work time `tenant` used lately, as of `now`.
    fn used_by(&self, tenant: Tenant, now: Instant) -> f64 {
        self.used
            .get(&tenant)
            .map_or(0.0, |used| used.at(now, USAGE_HALF_LIFE))
    }

    /// The class of work of a tenant that used `used` work time lately: heavy over
    /// [`HEAVY_SHARE`] of a worker, whose steady use adds up to `HEAVY_SHARE × half-life / ln 2`.
    fn class(used: f64) -> Class {
        match used > HEAVY_SHARE * USAGE_HALF_LIFE.as_secs_f64() / std::f64::consts::LN_2 {
            true => Class::Heavy,
            false => Class::Light,
        }
    }

    /// Turns `tenant` holds.
    fn held_by(&self, tenant: Tenant) -> usize {
        self.held.get(&tenant).copied().unwrap_or(0)
    }

    /// The waiter to serve next and the class of its work, if any holds fewer than `below`
    /// turns (and fewer than a tenant may), is not `except` and has a turn of its class free:
    /// fewest held first, then least work time used lately, then the earliest.
    fn fairest(&self, below: usize, except: Option<Tenant>) -> Option<(usize, Class)> {
        let below = below.min(self.per_tenant);
        let now = Instant::now();
        self.waiting
            .iter()
            .enumerate()
            .filter(|(_, waiter)| Some(waiter.tenant) != except)
            .map(|(at, waiter)| {
                let used = self.used_by(waiter.tenant, now);
                (self.held_by(waiter.tenant), used, at)
            })
            .filter(|&(held, used, _)| {
                held < below && self.running[Self::class(used) as usize] < self.workers
            })
            .min_by(|x, y| {
                (x.0.cmp(&y.0))
                    .then(x.1.total_cmp(&y.1))
                    .then(x.2.cmp(&y.2))
            })
            .map(|(_, used, at)| (at, Self::class(used)))
    }

    /// Hands the free turns to the fairest waiters that may take one.
    fn dispatch(&mut self, shared: &Arc<Mutex<Shared>>) {
        while self.hand_to_fairest(shared, usize::MAX, None) {}
    }

    /// Hands a turn to the fairest waiter holding fewer than `below` turns, other than
    /// `except` (skipping waiters that gave up); false when there is none.
    fn hand_to_fairest(
        &mut self,
        shared: &Arc<Mutex<Shared>>,
        below: usize,
        except: Option<Tenant>,
    ) -> bool {
        while let Some((at, class)) = self.fairest(below, except) {
            let Some(waiter) = self.waiting.remove(at) else {
                break;
            };
            self.take(waiter.tenant, class);
            let turn = Turn::given(shared, waiter.tenant, class);
            match waiter.grant.send(turn) {
                Ok(()) => return true,
                Err(mut unsent) => {
                    // Its request went away: undo without dropping (which would lock again).
                    unsent.shared = None;
                    self.give_back(waiter.tenant, class, Duration::ZERO);
                }
            }
        }
        false
    }
}

impl Turn {
    /// A turn of `shared` for `tenant`'s work of `class`, given now (already counted).
    fn given(shared: &Arc<Mutex<Shared>>, tenant: Tenant, class: Class) -> Self {
        Turn {
            shared: Some(Arc::clone(shared)),
            tenant,
            class,
            given: Instant::now(),
        }
    }

    /// Runs `work` on this thread in this turn (so that [`pause_point`] can share it), and
    /// gives the turn back after, even if `work` panics.
    pub fn run<T>(self, work: impl FnOnce() -> T) -> T {
        /// Gives the thread's turn back when the work ends, however it ends.
        struct Current;
        impl Drop for Current {
            fn drop(&mut self) {
                let turn = CURRENT.with(|current| current.borrow_mut().take());
                drop(turn);
            }
        }
        CURRENT.with(|current| *current.borrow_mut() = Some(self));
        let _current = Current;
        work()
    }

    /// This turn, or, once it has run a [`SLICE`] and another tenant holding fewer turns than
    /// this one's waits, a later turn after handing this one over and waiting in line again.
    /// Either way the slice's work time is counted to the tenant.
    fn pause(mut self) -> Result<Turn, Stopped> {
        if self.given.elapsed() < SLICE {
            return Ok(self);
        }
        let Some(shared) = self.shared.take() else {
            return Err(Stopped);
        };
        let granted = {
            let mut state = lock(&shared);
            let mine = state.held_by(self.tenant);
            state.give_back(self.tenant, self.class, self.given.elapsed());
            if !state.hand_to_fairest(&shared, mine, Some(self.tenant)) {
                // Kept: work that started light goes on as heavy once its tenant turned so.
                let used = state.used_by(self.tenant, Instant::now());
                let lowered = self.class == Class::Light && Shared::class(used) == Class::Heavy;
                if lowered {
                    self.class = Class::Heavy;
                }
                state.take(self.tenant, self.class);
                drop(state);
                if lowered {
                    workers::lower_this_thread();
                }
                self.shared = Some(shared);
                self.given = Instant::now();
                return Ok(self);
            }
            // Paused work waits first in line: among its tenant's requests it is served before
            // those not yet started, so a tenant's work under way (and the memory it holds) is
            // never more than its turns and the ones paused.
            let (grant, granted) = oneshot::channel();
            state.waiting.push_front(Waiter {
                tenant: self.tenant,
                grant,
            });
            granted
        };
        let turn = granted.blocking_recv().map_err(|_| Stopped)?;
        if turn.class == Class::Heavy {
            // The tenant turned heavy while this work ran: it goes on at heavy work's priority.
            workers::lower_this_thread();
        }
        Ok(turn)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let mut state = lock(&shared);
            state.give_back(self.tenant, self.class, self.given.elapsed());
            state.dispatch(&shared);
        }
    }
}

/// Lets the current thread's work pause for a fairer tenant: called now and then by long work
/// (every few hundred index entries of a search). Does nothing outside a turn or when nobody
/// holding fewer turns waits.
pub fn pause_point() {
    let Some(turn) = CURRENT.with(|current| current.borrow_mut().take()) else {
        return;
    };
    // A turn that cannot come back (the node is stopping) lets the work finish without one.
    let resumed = turn.pause().ok();
    CURRENT.with(|current| *current.borrow_mut() = resumed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    const A: Tenant = Tenant::User(1);
    const B: Tenant = Tenant::User(2);
    const C: Tenant = Tenant::Node;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A task waiting for a turn of `tenant`.
    fn waiting(turns: &Turns, tenant: Tenant) -> tokio::task::JoinHandle<Turn> {
        let turns = turns.clone();
        tokio::spawn(async move { turns.turn(tenant).await.unwrap() })
    }

    /// Lets spawned waiters queue, in the order spawned.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[test]
    fn a_freed_turn_goes_to_the_waiting_tenant_holding_fewest() {
        runtime().block_on(async {
            let turns = Turns::new(4);
            let a1 = turns.turn(A).await.unwrap();
            let _a2 = turns.turn(A).await.unwrap();
            let b1 = turns.turn(B).await.unwrap();
            let _b2 = turns.turn(B).await.unwrap();
            let a3 = waiting(&turns, A);
            settle().await;
            let b3 = waiting(&turns, B);
            settle().await;
            let c = waiting(&turns, C);
            settle().await;
            assert_eq!(turns.held(A), (4, 2));
            // C holds none: it goes before A and B, who asked first.
            drop(b1);
            let _c = c.await.unwrap();
            assert_eq!(turns.held(C), (4, 1));
            assert!(!a3.is_finished() && !b3.is_finished());
            // A and B hold one each now that A gave one back, and B, which gave its turn back
            // earlier, used less work time lately: B goes first, though A asked first.
            drop(a1);
            let _b3 = b3.await.unwrap();
            assert_eq!(turns.held(B), (4, 2));
            assert!(!a3.is_finished());
        });
    }

    /// The nice value of the thread `turns` runs `tenant`'s work on.
    async fn nice_of_work(turns: &Turns, tenant: Tenant) -> i32 {
        // SAFETY: getpriority only reads; 0 names the calling thread.
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        turns.blocking(tenant, nice).await.unwrap()
    }

    #[test]
    fn the_work_of_a_tenant_over_its_share_runs_lower_and_never_delays_a_light_one() {
        runtime().block_on(async {
            let turns = Turns::new(2);
            let light_nice = nice_of_work(&turns, A).await;
            // A and C each keep a turn busy for a second: more than half a worker lately.
            let a = turns.turn(A).await.unwrap();
            let c = turns.turn(C).await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop((a, c));
            assert_eq!(
                nice_of_work(&turns, A).await,
                (light_nice + workers::LOWER_BY).min(19)
            );
            // Both turns of heavy work are held, and a light tenant still gets one at once.
            let _a = turns.turn(A).await.unwrap();
            let _c = turns.turn(C).await.unwrap();
            let b = waiting(&turns, B);
            settle().await;
            assert!(b.is_finished(), "B's turn does not wait for A's or C's");
            assert_eq!(turns.held(B), (3, 1));
            assert_eq!(nice_of_work(&turns, Tenant::User(3)).await, light_nice);
            // A third heavy request waits: heavy work holds at most as many turns as workers.
            let c_again = waiting(&turns, C);
            settle().await;
            assert!(!c_again.is_finished());
        });
    }

    #[test]
    fn long_work_that_turns_its_tenant_heavy_goes_on_lower() {
        runtime().block_on(async {
            let turns = Turns::new(2);
            let light_nice = nice_of_work(&turns, A).await;
            // One piece of work, started light, runs a second and a half with pause points.
            let nice_at_end = turns
                .blocking(A, || {
                    let started = Instant::now();
                    while started.elapsed() < Duration::from_millis(1500) {
                        std::thread::sleep(Duration::from_millis(5));
                        pause_point();
                    }
                    // SAFETY: getpriority only reads; 0 names the calling thread.
                    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
                })
                .await
                .unwrap();
            assert_eq!(nice_at_end, (light_nice + workers::LOWER_BY).min(19));
        });
    }

    #[test]
    fn among_tenants_holding_as_few_the_one_that_used_least_lately_goes_first() {
        runtime().block_on(async {
            let turns = Turns::new(1);
            // A keeps the only turn busy for a while, then asks again before B.
            let a = turns.turn(A).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let a_again = waiting(&turns, A);
            settle().await;
            let b = waiting(&turns, B);
            settle().await;
            drop(a);
            let _b = b.await.unwrap();
            assert_eq!(turns.held(B), (1, 1));
            assert!(
                !a_again.is_finished(),
                "A waits behind B, which used none lately"
            );
        });
    }

    #[test]
    fn past_use_is_forgotten_by_half_every_half_life() {
        let now = Instant::now();
        let used = Decaying::new(0.8, now);
        let at = |later| used.at(now + later, USAGE_HALF_LIFE);
        assert!((at(Duration::ZERO) - 0.8).abs() < 1e-9);
        assert!((at(USAGE_HALF_LIFE) - 0.4).abs() < 1e-9);
        assert!((at(2 * USAGE_HALF_LIFE) - 0.2).abs() < 1e-9);
        let more = used.add(now + USAGE_HALF_LIFE, USAGE_HALF_LIFE, 1.0);
        assert!((more.at(now + USAGE_HALF_LIFE, USAGE_HALF_LIFE) - 1.4).abs() < 1e-9);
    }

    #[test]
    fn one_tenant_holds_at_most_half_the_turns_and_the_rest_serve_others_at_once() {
        runtime().block_on(async {
            let turns = Turns::new(2);
            let a1 = turns.turn(A).await.unwrap();
            let a2 = waiting(&turns, A);
            settle().await;
            // A free turn, but A holds its half: its second request waits, B's is served.
            assert_eq!(turns.held(A), (1, 1));
            assert!(!a2.is_finished());
            let b = tokio::time::timeout(Duration::from_secs(10), turns.turn(B))
                .await
                .expect("B is served at once")
                .unwrap();
            assert_eq!(turns.held(B), (2, 1));
            drop(a1);
            let _a2 = a2.await.unwrap();
            assert_eq!(turns.held(A), (2, 1));
            drop(b);
        });
    }

    #[test]
    fn long_work_hands_its_turn_to_a_waiting_tenant_at_a_pause_point() {
        let runtime = runtime();
        let turns = Turns::new(1);
        let long = runtime.block_on(turns.turn(A)).unwrap();
        let finish = Arc::new(AtomicBool::new(false));
        let pauses = {
            let finish = Arc::clone(&finish);
            std::thread::spawn(move || {
                long.run(|| {
                    let mut pauses = 0u64;
                    while !finish.load(Ordering::SeqCst) {
                        pause_point();
                        pauses += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    pauses
                })
            })
        };
        // The only turn is held by A's long work; B still gets one while it runs.
        let b = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), turns.turn(B)).await })
            .expect("B waited for A's long work to end")
            .unwrap();
        assert_eq!(turns.held(B), (1, 1));
        assert!(!pauses.is_finished(), "A's work still runs, paused");
        drop(b);
        finish.store(true, Ordering::SeqCst);
        assert!(pauses.join().unwrap() > 0);
        assert_eq!(
            turns.held(A),
            (0, 0),
            "A's turn was given back when its work ended"
        );
    }

    #[test]
    fn paused_work_resumes_before_its_tenants_new_work_starts() {
        let runtime = runtime();
        let turns = Turns::new(1);
        let long = runtime.block_on(turns.turn(A)).unwrap();
        let new_work = runtime.spawn({
            let turns = turns.clone();
            async move { turns.turn(A).await.unwrap() }
        });
        let b_waits = runtime.spawn({
            let turns = turns.clone();
            async move { turns.turn(B).await.unwrap() }
        });
        std::thread::sleep(SLICE + Duration::from_millis(50));
        let resumed = Arc::new(AtomicBool::new(false));
        let paused = {
            let resumed = Arc::clone(&resumed);
            std::thread::spawn(move || {
                long.run(|| {
                    pause_point();
                    resumed.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                })
            })
        };
        // B holds fewer turns than A: A's long work hands it over at its pause point.
        let b = runtime.block_on(b_waits).unwrap();
        assert!(!resumed.load(Ordering::SeqCst));
        drop(b);
        // The freed turn resumes A's paused work; A's new work waits for it to end.
        paused.join().unwrap();
        assert!(resumed.load(Ordering::SeqCst));
        let next = runtime.block_on(new_work).unwrap();
        assert_eq!(turns.held(A), (1, 1));
        drop(next);
    }

    #[test]
    fn work_of_one_tenant_does_not_pause_for_the_same_tenant() {
        let runtime = runtime();
        let turns = Turns::new(1);
        let long = runtime.block_on(turns.turn(A)).unwrap();
        let waiting = runtime.spawn({
            let turns = turns.clone();
            async move { turns.turn(A).await.unwrap() }
        });
        std::thread::sleep(SLICE + Duration::from_millis(50));
        long.run(pause_point);
        // The pause kept the turn (A waits behind itself), and the end of the work gave it on.
        let next = runtime.block_on(waiting).unwrap();
        assert_eq!(turns.held(A), (1, 1));
        drop(next);
        assert_eq!(turns.held(A), (0, 0));
    }

    #[test]
    fn a_waiter_that_gives_up_does_not_keep_a_turn() {
        runtime().block_on(async {
            let turns = Turns::new(1);
            let first = turns.turn(A).await.unwrap();
            let gave_up = tokio::time::timeout(Duration::from_millis(20), turns.turn(B)).await;
            assert!(gave_up.is_err());
            drop(first);
            assert_eq!(turns.held(B), (0, 0));
            let _again = turns.turn(C).await.unwrap();
            assert_eq!(turns.held(C), (1, 1));
        });
    }
}
