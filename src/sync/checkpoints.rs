//! Exchanging checkpoints and cosignatures during sync (SPEC §8): each hello carries the
//! sender's latest checkpoint of every origin it holds; the receiver verifies each against
//! what it holds (consistency with earlier checkpoints, and with the entries held), cosigns
//! the ones it accepts, and stores two checkpoints of one origin that contradict each other
//! as a split-view proof. Relayed checkpoints are what catches a node showing different
//! histories to different peers.

use crate::log::checkpoint::{self, Checkpoint};
use crate::log::OriginKey;
use crate::node::Node;
use crate::proto::sync as wire;
use crate::store::{AcceptError, StoreError};

/// Most checkpoints one hello carries.
pub const CHECKPOINTS_PER_HELLO_MAX: usize = 256;

/// The checkpoints to send to a peer: the node's own latest first, then the latest of every
/// other origin held. Every peer is shown the same ones.
pub fn outgoing(node: &Node) -> Result<Vec<String>, StoreError> {
    let own = node.origin();
    let mut origins = vec![own];
    origins.extend(
        node.store
            .heads()
            .into_iter()
            .map(|(origin, _)| origin)
            .filter(|origin| *origin != own),
    );
    let mut notes = Vec::new();
    for origin in origins.into_iter().take(CHECKPOINTS_PER_HELLO_MAX) {
        if let Some((_, note)) = node.store.latest_checkpoint(&origin)? {
            notes.push(note);
        }
    }
    Ok(notes)
}

/// Verifies, stores and cosigns the checkpoints `sender` sent; returns the cosignatures
/// over `sender`'s own checkpoints, to send back. Bad or contradicting notes are logged
/// (split views are stored as proof by the store) and never fail the session.
pub fn receive(node: &Node, sender: &OriginKey, notes: &[String]) -> Vec<wire::Cosignature> {
    let mut cosignatures = Vec::new();
    for note in notes.iter().take(CHECKPOINTS_PER_HELLO_MAX) {
        let origin = checkpoint::split_note(note)
            .ok()
            .and_then(|(body, _)| Checkpoint::parse_body(body).ok())
            .and_then(|claimed| claimed.origin_key().map(|key| (key, claimed.size)));
        let Some((origin, size)) = origin else {
            tracing::warn!(peer = %sender, "peer sent a malformed checkpoint");
            continue;
        };
        if origin == node.origin() {
            // Our own log: nothing to learn from a copy of our checkpoint.
            continue;
        }
        match node.cosign(note) {
            Ok(line) if origin == *sender => cosignatures.push(wire::Cosignature { size, line }),
            Ok(_) => {}
            Err(AcceptError::SplitView { origin, reason }) => {
                tracing::error!(%origin, peer = %sender, "split view detected: {reason}");
            }
            Err(error @ AcceptError::Unconfirmed { .. }) => {
                tracing::info!(%origin, peer = %sender, "{error}");
            }
            Err(error) => tracing::warn!(%origin, peer = %sender, "checkpoint refused: {error}"),
        }
    }
    cosignatures
}

/// Accepts a checkpoint `sender` relayed with stub proofs in a segment (not cosigned: a
/// segment is not a hello). Split views are stored as proof by the store and logged.
pub fn accept_relayed(node: &Node, sender: &OriginKey, note: &str) {
    // Relays repeat the checkpoint in every segment with stubs it covers: once held, it is
    // not checked again.
    let held = checkpoint::split_note(note)
        .ok()
        .and_then(|(body, _)| Checkpoint::parse_body(body).ok())
        .and_then(|claimed| Some((claimed.origin_key()?, claimed.size)))
        .and_then(|(origin, size)| node.store.checkpoint_at(&origin, size).ok()?);
    if held.as_deref() == Some(note) {
        return;
    }
    match node.store.accept_checkpoint(note) {
        Ok(_) => {}
        Err(AcceptError::SplitView { origin, reason }) => {
            tracing::error!(%origin, peer = %sender, "split view detected: {reason}");
        }
        Err(error @ AcceptError::Unconfirmed { .. }) => {
            tracing::info!(peer = %sender, "{error}");
        }
        Err(error) => tracing::warn!(peer = %sender, "relayed checkpoint refused: {error}"),
    }
}

/// Stores `cosigner`'s cosignatures over this node's own checkpoints.
pub fn store_cosignatures(node: &Node, cosigner: &OriginKey, cosignatures: &[wire::Cosignature]) {
    for cosignature in cosignatures {
        if let Err(error) = node.store.put_cosignature(
            &node.origin(),
            cosignature.size,
            cosigner,
            &cosignature.line,
        ) {
            tracing::warn!(peer = %cosigner, "cosignature refused: {error}");
        }
    }
}
