//! The auditor's toolkit (SPEC §8): export a self-contained bundle of a log, verify a bundle
//! or a data directory offline, replay the state at any instant, list the history of an event
//! or attribute, prove an entry's inclusion in the latest checkpoint; and the timer that has
//! `serve` sign checkpoints. The bundle format is described in [`bundle`].

use std::sync::Arc;
use std::time::Duration;

use crate::node::Node;

/// Signs a checkpoint of `node`'s own log every `audit.checkpoint_interval_s` seconds when
/// the log has grown; runs until the runtime stops.
pub async fn checkpoint_timer(node: Arc<Node>) {
    let period = Duration::from_secs(node.config.audit.checkpoint_interval_s.max(1));
    let mut ticker = tokio::time::interval(period);
    // The first tick fires at once: a restarted node states its size without waiting.
    loop {
        ticker.tick().await;
        let node = Arc::clone(&node);
        let signed = tokio::task::spawn_blocking(move || node.checkpoint(true)).await;
        match signed {
            Ok(Ok(Some((size, _)))) => tracing::debug!("signed checkpoint of size {size}"),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::error!("cannot sign a checkpoint: {error}"),
            Err(error) => tracing::error!("checkpoint task failed: {error}"),
        }
    }
}
