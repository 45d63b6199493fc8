//! The threads node work runs on in its [`turns`](crate::turns), at two CPU priorities: the
//! node's own for light work, and [`LOWER_BY`] nice steps lower for heavy work. The operating
//! system lets a thread lower its priority but not raise it again, so a light thread whose
//! work turns heavy while it runs ([`lower_this_thread`]) stays lower and serves heavy work
//! from then on (a heavy turn's work runs on a lowered thread; light work may too, when it
//! follows on a thread its tenant's earlier heavy turn lowered). Threads start as work needs
//! them (one per piece of work running or paused, so bounded by the requests and streams in
//! flight) and end after [`IDLE`] without work; [`wait_idle`] lets a stopping node wait for
//! the work under way.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How much lower (in nice steps) heavy work runs than light work.
pub const LOWER_BY: i32 = 10;

/// How long a thread waits for work before it ends.
pub const IDLE: Duration = Duration::from_secs(10);

/// The CPU priority work runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// The node's own.
    Normal = 0,
    /// [`LOWER_BY`] nice steps lower.
    Lower = 1,
}

/// Why work given to [`run`] did not finish.
#[derive(Debug, thiserror::Error)]
#[error("the work panicked: {0}")]
pub struct Panicked(String);

/// A piece of work sent to a thread.
type Job = Box<dyn FnOnce() + Send>;

/// A thread waiting for work, and where to send it.
struct Waiting {
    /// Which thread (in the order started).
    thread: u64,
    jobs: mpsc::Sender<Job>,
}

/// The threads waiting for work, per priority, and how many were started.
#[derive(Default)]
struct Pool {
    waiting: [Vec<Waiting>; 2],
    started: u64,
}

/// Work given to [`run`] and not finished (or dropped) yet, in the whole process.
static UNFINISHED: AtomicUsize = AtomicUsize::new(0);

/// Counts one piece of work unfinished while it lives.
struct Unfinished;

impl Unfinished {
    fn new() -> Self {
        UNFINISHED.fetch_add(1, Ordering::SeqCst);
        Unfinished
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        UNFINISHED.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits until no work given to [`run`] is unfinished, at most `timeout`; whether none is.
pub fn wait_idle(timeout: Duration) -> bool {
    let started = Instant::now();
    while UNFINISHED.load(Ordering::SeqCst) > 0 {
        if started.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

thread_local! {
    /// Whether this thread is one of the pool's, and whether it was lowered.
    static POOL_THREAD: Cell<Option<Priority>> = const { Cell::new(None) };
}

/// The process's threads: shared by every node in it.
fn pool() -> MutexGuard<'static, Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    POOL.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `work` on a thread of `priority` and waits for it without blocking the async workers.
pub async fn run<T: Send + 'static>(
    priority: Priority,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Panicked> {
    let (done, result) = oneshot::channel();
    let unfinished = Unfinished::new();
    submit(
        priority,
        Box::new(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(work)));
            drop(unfinished);
        }),
    );
    match result.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(Panicked(panic_message(&*panic))),
        Err(_) => Err(Panicked("its thread ended".into())),
    }
}

/// What a panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => (*message).to_string(),
        (_, Some(message)) => message.clone(),
        _ => "(no message)".into(),
    }
}

/// Lowers the calling thread's priority by [`LOWER_BY`] for good, if it is a pool thread not
/// lowered yet: its work turned heavy.
pub fn lower_this_thread() {
    if POOL_THREAD.get() == Some(Priority::Normal) {
        lower();
        POOL_THREAD.set(Some(Priority::Lower));
    }
}

/// Lowers the calling thread's CPU priority by [`LOWER_BY`].
fn lower() {
    // SAFETY: nice only changes the calling thread's priority (on Linux, per thread); a
    // failure leaves the priority as it was, which is harmless.
    unsafe {
        libc::nice(LOWER_BY);
    }
}

/// Hands `job` to a waiting thread of `priority`, or to a new one.
fn submit(priority: Priority, mut job: Job) {
    let thread = {
        let mut pool = pool();
        while let Some(waiting) = pool.waiting[priority as usize].pop() {
            match waiting.jobs.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(back)) => job = back,
            }
        }
        pool.started += 1;
        pool.started
    };
    let name = match priority {
        Priority::Normal => "threatlog-work",
        Priority::Lower => "threatlog-heavy",
    };
    let started = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || serve(thread, priority, job));
    if let Err(error) = started {
        // Its sender is dropped with the job: `run` answers that the thread ended.
        tracing::error!("cannot start a worker thread: {error}");
    }
}

/// A pool thread's life: `job`, then whatever it is handed, until [`IDLE`] passes without.
fn serve(thread: u64, priority: Priority, mut job: Job) {
    if priority == Priority::Lower {
        lower();
    }
    POOL_THREAD.set(Some(priority));
    let (jobs, next) = mpsc::channel();
    loop {
        job();
        let now = POOL_THREAD.get().unwrap_or(priority);
        pool().waiting[now as usize].push(Waiting {
            thread,
            jobs: jobs.clone(),
        });
        job = loop {
            match next.recv_timeout(IDLE) {
                Ok(job) => break job,
                Err(RecvTimeoutError::Timeout) => {
                    let mut pool = pool();
                    let waiting = &mut pool.waiting[now as usize];
                    if let Some(at) = waiting.iter().position(|w| w.thread == thread) {
                        waiting.swap_remove(at);
                        return;
                    }
                    // Taken off the list by `submit`: its job is on the way.
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's nice value.
    fn nice() -> i32 {
        // SAFETY: getpriority only reads; 0 names the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn lower_work_runs_lower_and_a_lowered_thread_serves_only_lower_work() {
        runtime().block_on(async {
            let normal = run(Priority::Normal, nice).await.unwrap();
            let lower = run(Priority::Lower, nice).await.unwrap();
            assert_eq!(lower, (normal + LOWER_BY).min(19));
            // Work that turns heavy lowers its thread; light work after it runs normal.
            let lowered = run(Priority::Normal, || {
                lower_this_thread();
                (std::thread::current().id(), nice())
            })
            .await
            .unwrap();
            assert_eq!(lowered.1, lower);
            for _ in 0..4 {
                let (thread, light) =
                    run(Priority::Normal, || (std::thread::current().id(), nice()))
                        .await
                        .unwrap();
                assert_eq!(light, normal);
                assert_ne!(thread, lowered.0);
            }
        });
    }

    #[test]
    fn a_panic_is_an_error_and_the_pool_goes_on() {
        runtime().block_on(async {
            let error = run(Priority::Normal, || panic!("boom")).await.unwrap_err();
            assert_eq!(error.to_string(), "the work panicked: boom");
            assert_eq!(run(Priority::Normal, || 7).await.unwrap(), 7);
        });
    }
}
