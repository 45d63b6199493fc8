//! The receiver's checks on each entry from a peer (SPEC §7), beyond signature and chain
//! (which decoding and the store do) and write authority (which the store asks
//! [`crate::policy::authority`] before this): the origin time against the receiver's clock,
//! and the hop rules.

use uuid::Uuid;

use super::reach::{entry_reach, event_reach, stated_event_reach};
use crate::log::VerifiedEntry;
use crate::policy::{check_arrival, is_relay, Party, Reach};
use crate::proto::RecordKind;
use crate::store::Rejection;
use crate::view::{read, ViewRead};

/// Prefix of rejection reasons that are policy violations by the sending peer.
pub const VIOLATION: &str = "policy violation";

/// Prefix of rejection reasons for entries dated too far ahead of the receiver's clock.
pub const CLOCK_SKEW: &str = "clock skew";

/// The receiver's clock, and how far ahead of it an origin time may be (SPEC §4.2,
/// `sync.clock_skew_max_s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// The receiver's time, in milliseconds since the epoch.
    pub now_ms: i64,
    /// How far ahead of `now_ms` an entry's origin time may be, in milliseconds.
    pub skew_max_ms: i64,
}

/// Checks `entry`, sent by `sender` to `receiver`, against the views `views` and the
/// receiver's `clock`. An entry dated too far ahead is refused for now
/// ([`Rejection::Deferred`]); a hop the entry's level does not allow is a policy violation.
pub fn check_entry(
    sender: Party,
    receiver: Party,
    entry: &VerifiedEntry,
    views: &dyn ViewRead,
    clock: Clock,
) -> Result<(), Rejection> {
    let ahead_ms = entry.entry().time_ms.saturating_sub(clock.now_ms);
    if ahead_ms > clock.skew_max_ms {
        return Err(Rejection::Deferred(format!(
            "{CLOCK_SKEW}: the entry's origin time is {ahead_ms} ms ahead of this node's clock, \
             more than sync.clock_skew_max_s ({} s) allows; it is accepted once this node's \
             clock catches up",
            clock.skew_max_ms / 1000
        )));
    }
    let kv = |error: crate::view::KvError| Rejection::Policy(error.to_string());
    let origin = Party {
        node: entry.origin(),
        org: entry.origin_org(),
    };
    let Some(event) = entry.event() else {
        // Directory data (organisations, tag definitions, sharing groups) is released to
        // every peer by the directory rule; it has no hop limit to check.
        return Ok(());
    };
    // A tombstone carries no content; its origin sends it to every peer that may hold any
    // of the event (SPEC §6.2), which may be wider than the level it states.
    let item = match entry.is_tombstone() {
        true => Reach::Inherit,
        false => entry_reach(views, entry).map_err(kv)?,
    };
    // The event's level is the relays' to keep (SPEC §6.4). Its origin releases old entries
    // by the level of the event's last publish, which may not have reached this node yet,
    // while an old entry states the level it was written at; so only the item's own level
    // is checked on what an origin sends itself.
    let event_level = match is_relay(sender, origin) {
        true => relayed_event_level(views, entry, &event).map_err(kv)?,
        false => Reach::Inherit,
    };
    for level in [&event_level, &item] {
        check_arrival(sender, receiver, origin, level)
            .map_err(|violation| Rejection::Policy(format!("{VIOLATION}: {}", violation.reason)))?;
    }
    Ok(())
}

/// The level of `event` a relayed `entry` is judged by: the event's as held here (the latest
/// write wins, so a revealed old entry is judged by the event's level now); for an event not
/// held yet, or held only in part, the level the entry itself states (the event's fields, a
/// publish, a tombstone); else level 0, as an honest relay passes on an event's entries only
/// after what states its level.
fn relayed_event_level(
    views: &dyn ViewRead,
    entry: &VerifiedEntry,
    event: &Uuid,
) -> Result<Reach, crate::view::KvError> {
    let record = read::record(views, RecordKind::Event, event.as_bytes())?;
    if let Some(record) = record.filter(|record| record.field("distribution").is_some()) {
        return event_reach(views, &record);
    }
    Ok(match stated_event_reach(views, entry, event)? {
        Some(reach) => reach,
        None if entry.is_tombstone() => entry_reach(views, entry)?,
        None => Reach::Level(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{seal, Draft, Head, NodeKey};
    use crate::proto;
    use crate::view::MemoryViews;

    /// How far ahead the receiver lets origin times be in these tests.
    const SKEW_MAX_MS: i64 = 600_000;

    fn entry_at(time_ms: i64) -> VerifiedEntry {
        let key = NodeKey::from_seed(&[4; 32]);
        let draft = Draft {
            acting_org: Uuid::from_u128(1),
            acting_user: "u".into(),
            event: None,
            visibility: proto::Visibility::default(),
            ops: vec![],
        };
        seal(
            &key,
            Uuid::from_u128(1),
            &Head::EMPTY,
            draft,
            time_ms,
            [1; 16],
        )
        .unwrap()
    }

    #[test]
    fn entries_dated_too_far_ahead_are_refused_for_now() {
        let party = Party {
            node: NodeKey::from_seed(&[5; 32]).origin(),
            org: Uuid::from_u128(2),
        };
        let now_ms = 1_700_000_000_000;
        let clock = Clock {
            now_ms,
            skew_max_ms: SKEW_MAX_MS,
        };
        let views = MemoryViews::new();
        for time_ms in [now_ms - 86_400_000, now_ms, now_ms + SKEW_MAX_MS] {
            assert_eq!(
                check_entry(party, party, &entry_at(time_ms), &views, clock),
                Ok(())
            );
        }
        let refused = check_entry(party, party, &entry_at(now_ms + 86_400_000), &views, clock);
        assert_eq!(
            refused,
            Err(Rejection::Deferred(
                "clock skew: the entry's origin time is 86400000 ms ahead of this node's clock, \
                 more than sync.clock_skew_max_s (600 s) allows; it is accepted once this \
                 node's clock catches up"
                    .into()
            ))
        );
    }
}
