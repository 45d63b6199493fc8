//! Counted places per key (connections per address, pull streams per peer): at most a set
//! number held at once for each key, each given back when its holder drops it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Places held, per key.
pub struct Slots<K: Eq + Hash + Copy> {
    held: Arc<Mutex<HashMap<K, usize>>>,
    /// Most places one key may hold.
    max: usize,
}

impl<K: Eq + Hash + Copy> Slots<K> {
    /// At most `max` places per key (at least one).
    pub fn new(max: usize) -> Self {
        Slots {
            held: Arc::default(),
            max: max.max(1),
        }
    }

    /// One more place for `key`, if it holds fewer than the most.
    pub fn take(&self, key: K) -> Option<Slot<K>> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = held.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            held: Arc::clone(&self.held),
            key,
        })
    }

    /// Most places one key may hold.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// One place held for a key, given back when dropped.
pub struct Slot<K: Eq + Hash + Copy> {
    held: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
}

impl<K: Eq + Hash + Copy> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_holds_at_most_the_most_and_drops_give_places_back() {
        let slots = Slots::new(2);
        let first = slots.take('a').unwrap();
        let _second = slots.take('a').unwrap();
        assert!(slots.take('a').is_none());
        assert!(slots.take('b').is_some());
        drop(first);
        assert!(slots.take('a').is_some());
    }
}
