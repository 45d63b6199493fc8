//! Who may see what across nodes (SPEC §6): the release decision for one entry and one peer,
//! and the hop check a receiver applies to what arrives. Pure: the sync layer gathers the
//! facts (current event state, tags, sharing groups) and asks these functions. Who may write
//! what (SPEC §4.2) is [`authority`], which reads the views it is given; the distribution a
//! record or item states, as every reader reads it, is [`visibility`].

pub mod authority;
mod tlp;
pub mod visibility;

pub use tlp::Tlp;

use std::collections::BTreeSet;
use uuid::Uuid;

use crate::log::OriginKey;

/// How a peer relates to this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Relationship {
    /// A node of the same organisation: receives everything but what is kept local.
    Internal,
    /// Another organisation's node: receives what distribution, groups and TLP allow.
    External,
}

impl std::str::FromStr for Relationship {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "internal" => Ok(Relationship::Internal),
            "external" => Ok(Relationship::External),
            other => Err(format!(
                "unknown relationship {other:?}; expected internal or external"
            )),
        }
    }
}

impl std::fmt::Display for Relationship {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Relationship::Internal => "internal",
            Relationship::External => "external",
        })
    }
}

/// A peer's release policy: relationship, TLP ceiling and tag/org rules.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerRules {
    /// Internal (same organisation) or external.
    pub relationship: Relationship,
    /// The strictest TLP the peer may receive.
    pub tlp_max: Tlp,
    /// When non-empty, only events carrying one of these tags are released.
    #[serde(default)]
    pub tags_include: Vec<String>,
    /// Events carrying any of these tags are withheld.
    #[serde(default)]
    pub tags_exclude: Vec<String>,
    /// When non-empty, only events created by one of these organisations are released.
    #[serde(default)]
    pub orgs_include: Vec<Uuid>,
    /// Events created by any of these organisations are withheld.
    #[serde(default)]
    pub orgs_exclude: Vec<Uuid>,
}

/// A sharing group as the policy needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// Member organisations.
    pub orgs: BTreeSet<Uuid>,
    /// Member nodes: the only relays of a non-roaming group.
    pub nodes: BTreeSet<OriginKey>,
    /// A roaming group may be relayed by any node that holds it.
    pub roaming: bool,
}

/// A distribution level with its sharing group when the level is 4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Levels 0–3.
    Level(u8),
    /// Level 4; `None` when the group's record is not known here.
    Group(Option<Group>),
    /// Level 5 on an item: the event's reach decides.
    Inherit,
}

/// A node taking part in one hop: its key and organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Party {
    /// The node key.
    pub node: OriginKey,
    /// The node's organisation.
    pub org: Uuid,
}

/// Which gate an entry passes (SPEC §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Released only once the event has been published after the entry was written.
    Publish,
    /// Sightings skip the publish gate.
    Sighting,
    /// Tombstones skip the publish gate: a deletion goes at once to every peer the event's
    /// facts at its deletion let see it, and the sender adds every peer it sent any of the
    /// event, so that it cannot be held back.
    Tombstone,
    /// Directory data (organisations, tag definitions): released to every peer.
    Directory,
}

/// What the sender knows, now, about an entry to release.
#[derive(Clone, Debug)]
pub struct EntryFacts {
    /// The entry's origin node and organisation.
    pub origin: Party,
    /// The event's reach now (for a deleted event, when it was deleted).
    pub event: Reach,
    /// The event's reach at its last publish: old entries go no further than it allowed
    /// until the event is published again ([`Reach::Inherit`] when never published).
    pub event_published: Reach,
    /// The most restrictive reach among the items the entry touches.
    pub item: Reach,
    /// Gate kind.
    pub gate: Gate,
    /// The event was published after this entry was written.
    pub published_after: bool,
    /// The event's non-local tag names now.
    pub event_tags: Vec<String>,
    /// Strictest TLP among the event and the items (`None`: no TLP tag anywhere).
    pub tlp: Option<Tlp>,
    /// The event's creator organisation (`Orgc`), else its owner.
    pub creator: Option<Uuid>,
    /// The entry attaches or detaches a local tag.
    pub has_local_tag: bool,
    /// The entry attaches or detaches a non-exportable tag.
    pub has_unexportable_tag: bool,
}

/// Why an entry is withheld from a peer (sent as a stub).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Withheld {
    /// The event has not been published since the entry was written.
    #[error("not published since written")]
    Unpublished,
    /// The distribution level or sharing group does not reach the peer.
    #[error("distribution does not reach the peer")]
    Distribution,
    /// The TLP is above the peer's ceiling.
    #[error("TLP {0} is above the peer's ceiling")]
    Tlp(Tlp),
    /// The peer's tag or organisation rules exclude the event.
    #[error("excluded by the peer's rules")]
    Rules,
    /// The entry carries a local tag, or a non-exportable tag for an external peer.
    #[error("carries a tag that stays on this node")]
    LocalTag,
}

/// Decides whether `sender` releases an entry described by `facts` to `peer` with `rules`
/// (SPEC §6.2–6.4). `default_tlp` counts for events with no TLP tag.
pub fn release(
    sender: Party,
    peer: Party,
    rules: &PeerRules,
    facts: &EntryFacts,
    default_tlp: Tlp,
) -> Result<(), Withheld> {
    let internal = rules.relationship == Relationship::Internal;
    if facts.has_local_tag || (facts.has_unexportable_tag && !internal) {
        return Err(Withheld::LocalTag);
    }
    match facts.gate {
        Gate::Directory => return Ok(()),
        Gate::Publish if !facts.published_after => return Err(Withheld::Unpublished),
        _ => {}
    }
    let relayed = is_relay(sender, facts.origin);
    let reached = [&facts.event, &facts.event_published, &facts.item]
        .into_iter()
        .all(|reach| reaches(reach, relayed, sender, peer));
    if !internal && !reached {
        return Err(Withheld::Distribution);
    }
    let tlp = facts.tlp.unwrap_or(default_tlp);
    if tlp > rules.tlp_max {
        return Err(Withheld::Tlp(tlp));
    }
    if !rules_allow(rules, facts) {
        return Err(Withheld::Rules);
    }
    Ok(())
}

/// Whether an entry of `origin` held by `holder` came from elsewhere: the holder is neither
/// the origin nor a node of the origin's organisation.
pub fn is_relay(holder: Party, origin: Party) -> bool {
    holder.node != origin.node && holder.org != origin.org
}

/// Whether `reach` lets `sender` release to an external `peer`; a relayed level 2 has
/// arrived here as level 1 and goes no further.
fn reaches(reach: &Reach, relayed: bool, sender: Party, peer: Party) -> bool {
    match reach {
        Reach::Inherit => true,
        Reach::Level(3) => true,
        Reach::Level(2) => !relayed,
        Reach::Level(_) => false,
        Reach::Group(None) => false,
        Reach::Group(Some(group)) => {
            group.orgs.contains(&peer.org)
                && (!relayed || group.roaming || group.nodes.contains(&sender.node))
        }
    }
}

fn rules_allow(rules: &PeerRules, facts: &EntryFacts) -> bool {
    // Machine tags match in any case (SPEC §6.2).
    let has = |list: &[String]| {
        facts
            .event_tags
            .iter()
            .any(|tag| list.iter().any(|rule| rule.eq_ignore_ascii_case(tag)))
    };
    if !rules.tags_include.is_empty() && !has(&rules.tags_include) {
        return false;
    }
    if has(&rules.tags_exclude) {
        return false;
    }
    let creator_in = |list: &[Uuid]| facts.creator.is_some_and(|org| list.contains(&org));
    if !rules.orgs_include.is_empty() && !creator_in(&rules.orgs_include) {
        return false;
    }
    !creator_in(&rules.orgs_exclude)
}

/// An entry that arrived further than its level allows (SPEC §6.4): a policy violation by the
/// sender.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("policy violation: {reason}")]
pub struct Violation {
    /// What rule the hop broke.
    pub reason: String,
}

/// The receiver's hop check: may `sender` have sent an entry of `origin` with `reach` to
/// `receiver`? Internal hops (same organisation) carry everything.
pub fn check_arrival(
    sender: Party,
    receiver: Party,
    origin: Party,
    reach: &Reach,
) -> Result<(), Violation> {
    if receiver.org == sender.org {
        return Ok(());
    }
    let relayed = is_relay(sender, origin);
    let violation = |reason: &str| {
        Err(Violation {
            reason: reason.to_string(),
        })
    };
    match reach {
        Reach::Inherit | Reach::Level(3) => Ok(()),
        Reach::Level(0) => violation("level 0 (organisation only) sent to another organisation"),
        Reach::Level(1) => violation("level 1 (community only) sent outside the community"),
        Reach::Level(2) if relayed => {
            violation("level 2 (connected communities) relayed beyond one hop")
        }
        Reach::Level(_) => Ok(()),
        Reach::Group(None) => Ok(()),
        Reach::Group(Some(group)) => {
            if !group.orgs.contains(&receiver.org) {
                violation("sharing group does not include this organisation")
            } else if relayed && !group.roaming && !group.nodes.contains(&sender.node) {
                violation("sharing group is not roaming and does not list the relaying node")
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
