//! Sessions between nodes in one process, without a network: the calls a pulling session
//! makes through [`super::client`] and [`super::service`] (hellos with checkpoints and
//! cosignatures, the reveal of held stubs, then the pull stream's segments), in the same order,
//! on the caller's thread. The caller moves each segment from the server to the puller, so it
//! decides when segments travel, can interleave several sessions, and can drop a session
//! with a segment in flight (a lost connection); the [`super::engine`] state machines decide
//! when the next session opens and where it resumes.

use super::exchange::{self, ExchangeError, Outbox};
use super::peer::Peer;
use super::wire;
use crate::node::Node;

/// A pull session: `puller` receives `server`'s log after a cursor.
pub struct Session<'a> {
    /// The node that pulls.
    puller: &'a Node,
    /// The puller's record of the server.
    server_on_puller: Peer,
    /// What the server sends the puller.
    outbox: Outbox<&'a Node>,
}

impl<'a> Session<'a> {
    /// Opens a session in which `puller` pulls `server`'s log after `cursor`: both must have
    /// paired the other, and neither quarantined it.
    pub fn open(puller: &'a Node, server: &'a Node, cursor: u64) -> Result<Self, ExchangeError> {
        let server_on_puller = exchange::served_peer(puller, &server.origin())?;
        let puller_on_server = exchange::served_peer(server, &puller.origin())?;
        let hello = exchange::hello_request(puller)?;
        let answer = exchange::answer_hello(server, &puller_on_server, &hello.checkpoints)?;
        exchange::hello_answered(puller, &server_on_puller, &answer);
        if let Some(request) = exchange::reveal_request(puller)? {
            let segment = exchange::answer_reveal(server, &puller_on_server, request.ids)?;
            exchange::receive_reveal(puller, &server_on_puller, segment)?;
        }
        Ok(Session {
            puller,
            server_on_puller,
            outbox: Outbox::new(server, puller_on_server, cursor),
        })
    }

    /// The server's next segment, or `None` when the puller has everything that arrived so
    /// far (a live session waits for more; ask again after new arrivals). An error ends the
    /// session: the server no longer serves the puller.
    pub fn next_segment(&mut self) -> Result<Option<wire::Segment>, ExchangeError> {
        self.outbox.next_segment()
    }

    /// Hands `segment` to the puller; on success returns its cursor, which the puller's
    /// [`super::engine::PeerSync`] resumes after.
    pub fn deliver(&self, segment: wire::Segment) -> Result<u64, ExchangeError> {
        let cursor = segment.cursor;
        exchange::receive(self.puller, &self.server_on_puller, segment)?;
        Ok(cursor)
    }
}
