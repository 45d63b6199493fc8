//! The feed schedule: every configured feed fetched at the configured interval while the node
//! serves, on a tokio task that runs each round on a blocking thread. IO: tasks and threads.

use std::sync::Arc;
use std::time::Duration;

use super::feeds::{fetch_feed, list};
use crate::node::Node;

/// Fetches every feed every `interval_s` seconds while the node serves (0: never), logging
/// what each fetch did, until `stop` turns true (a fetch under way finishes first).
pub fn spawn_schedule(
    node: Arc<Node>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let interval_s = node.config.feeds.fetch_interval_s;
    if interval_s == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(interval_s));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            let node = Arc::clone(&node);
            let done = tokio::task::spawn_blocking(move || fetch_all(&node)).await;
            if let Err(error) = done {
                tracing::warn!("scheduled feed fetch stopped: {error}");
            }
        }
    }))
}

/// Fetches every configured feed once, logging each outcome.
pub fn fetch_all(node: &Node) {
    let feeds = match list(node) {
        Ok(feeds) => feeds,
        Err(error) => {
            tracing::warn!("cannot list feeds: {error}");
            return;
        }
    };
    for feed in feeds {
        match fetch_feed(node, &feed.name, &|_, _| {}) {
            Ok(report) => {
                tracing::info!(
                    feed = %feed.name,
                    added = report.added,
                    updated = report.updated,
                    skipped = report.skipped,
                    failed = report.failed.len(),
                    "feed fetched"
                );
                for (uuid, reason) in report.failed {
                    tracing::warn!(feed = %feed.name, %uuid, "event not imported: {reason}");
                }
            }
            Err(error) => tracing::warn!(feed = %feed.name, "feed fetch failed: {error}"),
        }
    }
}
