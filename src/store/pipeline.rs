//! Ordered durable writes with overlap: an append prepares its write batch under the writer
//! mutex, hands it over with a ticket and releases the mutex, so the next append can reduce
//! while the first one's batch goes through RocksDB. Batches are written strictly in
//! ticket order. Until a batch is written, its view changes stay readable as a *layer*, so
//! the next append's reducer sees them; nothing else reads state that is not durable, because
//! every other user of the writer first drains the pipeline (see `Store::writer_lock`).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::view::Table;

/// The view changes of one prepared batch, per table in [`Table::ALL`] order (`None`
/// deletes). Hashed with foldhash: seeded per process like the standard hasher, and several
/// times faster on the short keys views use.
pub(crate) type Layer = [foldhash::HashMap<Vec<u8>, Option<Vec<u8>>>; Table::ALL.len()];

/// The pipeline's shared state.
#[derive(Default)]
struct State {
    /// Layers of batches handed over but not yet written, oldest first, with their tickets.
    layers: VecDeque<(u64, Arc<Layer>)>,
    /// The ticket the next handed-over batch gets.
    next_ticket: u64,
    /// The ticket whose batch is written next.
    next_write: u64,
    /// A write failed: the batches prepared on top of it fail too, and the writer's
    /// in-memory state (heads, counters, trees) must be reloaded from the database.
    failed: bool,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Pipeline {
    state: Mutex<State>,
    /// Signalled after every write.
    written: Condvar,
}

/// Why a handed-over batch was not written.
#[derive(Debug)]
pub(crate) enum WriteFailure<E> {
    /// The write itself failed.
    Write(E),
    /// An earlier batch this one was prepared on top of failed to write.
    Earlier,
}

impl Pipeline {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state holds only counters and immutable layers; a panic elsewhere cannot
        // leave it half-updated.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The layers not yet written, oldest first. Taken once, before reading the database,
    /// so a layer written meanwhile is still overlaid.
    pub(crate) fn layers(&self) -> Vec<Arc<Layer>> {
        self.state()
            .layers
            .iter()
            .map(|(_, layer)| Arc::clone(layer))
            .collect()
    }

    /// Hands over a prepared batch's layer; returns its ticket and the shared layer. Called
    /// under the writer mutex, so tickets follow the order in which batches were prepared.
    pub(crate) fn hand_over(&self, layer: Layer) -> (u64, Arc<Layer>) {
        let layer = Arc::new(layer);
        let mut state = self.state();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.layers.push_back((ticket, Arc::clone(&layer)));
        (ticket, layer)
    }

    /// Waits for `ticket`'s turn and runs `write` (unless an earlier write failed), then
    /// retires the ticket's layer.
    pub(crate) fn write<E>(
        &self,
        ticket: u64,
        write: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), WriteFailure<E>> {
        let mut state = self.state();
        while state.next_write != ticket {
            state = self
                .written
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let result = if state.failed {
            Err(WriteFailure::Earlier)
        } else {
            // Writes are ordered by the ticket, not by this lock: release it while RocksDB
            // works so that readers can take layer snapshots.
            drop(state);
            let result = write().map_err(WriteFailure::Write);
            state = self.state();
            result
        };
        if result.is_err() {
            state.failed = true;
        }
        let retired = if state.layers.front().is_some_and(|(t, _)| *t == ticket) {
            state.layers.pop_front()
        } else {
            None
        };
        state.next_write += 1;
        drop(state);
        self.written.notify_all();
        // Freed, if this was the last reference, outside the lock.
        drop(retired);
        result
    }

    /// Waits until every handed-over batch is written. Returns whether one failed since the
    /// last drain (the writer state must then be reloaded), clearing the mark.
    pub(crate) fn drain(&self) -> bool {
        let mut state = self.state();
        while state.next_write != state.next_ticket {
            state = self
                .written
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        std::mem::take(&mut state.failed)
    }

    /// Marks the pipeline failed (the writer state could not be reloaded).
    pub(crate) fn mark_failed(&self) {
        self.state().failed = true;
    }

    /// Whether a write failed and the writer state has not been reloaded since.
    pub(crate) fn failed(&self) -> bool {
        self.state().failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(key: &[u8]) -> Layer {
        let mut layer = Layer::default();
        layer[0].insert(key.to_vec(), Some(b"v".to_vec()));
        layer
    }

    #[test]
    fn writes_run_in_ticket_order_and_retire_their_layers() {
        let pipeline = Arc::new(Pipeline::default());
        let (first, _) = pipeline.hand_over(layer(b"a"));
        let (second, _) = pipeline.hand_over(layer(b"b"));
        assert_eq!(pipeline.layers().len(), 2);
        let order = Arc::new(Mutex::new(Vec::new()));
        let later = {
            let (pipeline, order) = (Arc::clone(&pipeline), Arc::clone(&order));
            std::thread::spawn(move || {
                pipeline.write(second, || -> Result<(), ()> {
                    order.lock().unwrap().push(second);
                    Ok(())
                })
            })
        };
        // The second write cannot run before the first.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(order.lock().unwrap().is_empty());
        pipeline
            .write(first, || -> Result<(), ()> {
                order.lock().unwrap().push(first);
                Ok(())
            })
            .unwrap();
        later.join().unwrap().unwrap();
        assert_eq!(*order.lock().unwrap(), vec![first, second]);
        assert!(pipeline.layers().is_empty());
        assert!(!pipeline.drain());
    }

    #[test]
    fn a_failed_write_fails_the_batches_prepared_on_top_of_it() {
        let pipeline = Pipeline::default();
        let (first, _) = pipeline.hand_over(layer(b"a"));
        let (second, _) = pipeline.hand_over(layer(b"b"));
        assert!(matches!(
            pipeline.write(first, || Err("disk full")),
            Err(WriteFailure::Write("disk full"))
        ));
        let mut ran = false;
        assert!(matches!(
            pipeline.write(second, || -> Result<(), ()> {
                ran = true;
                Ok(())
            }),
            Err(WriteFailure::Earlier)
        ));
        assert!(!ran);
        assert!(pipeline.failed());
        assert!(pipeline.drain());
        assert!(!pipeline.failed());
        let (third, _) = pipeline.hand_over(layer(b"c"));
        pipeline
            .write(third, || -> Result<(), ()> { Ok(()) })
            .unwrap();
    }
}
