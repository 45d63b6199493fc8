use super::*;

fn party(byte: u8, org: u128) -> Party {
    Party {
        node: OriginKey([byte; 32]),
        org: Uuid::from_u128(org),
    }
}

fn rules(relationship: Relationship, tlp_max: Tlp) -> PeerRules {
    PeerRules {
        relationship,
        tlp_max,
        tags_include: vec![],
        tags_exclude: vec![],
        orgs_include: vec![],
        orgs_exclude: vec![],
    }
}

fn facts(origin: Party, event: Reach) -> EntryFacts {
    EntryFacts {
        origin,
        event,
        event_published: Reach::Inherit,
        item: Reach::Inherit,
        gate: Gate::Publish,
        published_after: true,
        event_tags: vec![],
        tlp: None,
        creator: Some(origin.org),
        has_local_tag: false,
        has_unexportable_tag: false,
    }
}

const A: u128 = 0xa;
const B: u128 = 0xb;
const C: u128 = 0xc;

#[test]
fn levels_reach_external_peers_as_spec_section_6_1_says() {
    let (a, b) = (party(1, A), party(2, B));
    let external = rules(Relationship::External, Tlp::Amber);
    let decide = |level| release(a, b, &external, &facts(a, Reach::Level(level)), Tlp::Green);
    assert_eq!(decide(0), Err(Withheld::Distribution));
    assert_eq!(decide(1), Err(Withheld::Distribution));
    assert_eq!(decide(2), Ok(()));
    assert_eq!(decide(3), Ok(()));
}

#[test]
fn a_relayed_level_2_stops_and_level_3_travels_on() {
    let (a, b, c) = (party(1, A), party(2, B), party(3, C));
    let external = rules(Relationship::External, Tlp::Amber);
    let relay = |level| release(b, c, &external, &facts(a, Reach::Level(level)), Tlp::Green);
    assert_eq!(relay(2), Err(Withheld::Distribution));
    assert_eq!(relay(3), Ok(()));
}

#[test]
fn internal_peers_get_every_level_but_never_local_tags() {
    let (a, a2) = (party(1, A), party(2, A));
    let internal = rules(Relationship::Internal, Tlp::Red);
    let mut entry = facts(a, Reach::Level(0));
    assert_eq!(release(a, a2, &internal, &entry, Tlp::Green), Ok(()));
    entry.has_local_tag = true;
    assert_eq!(
        release(a, a2, &internal, &entry, Tlp::Green),
        Err(Withheld::LocalTag)
    );
}

#[test]
fn sharing_groups_need_membership_and_roaming_or_a_listed_relay() {
    let (a, b, c) = (party(1, A), party(2, B), party(3, C));
    let external = rules(Relationship::External, Tlp::Amber);
    let group = |roaming, nodes: &[Party]| Group {
        orgs: [A, B, C].map(Uuid::from_u128).into(),
        nodes: nodes.iter().map(|party| party.node).collect(),
        roaming,
    };
    let entry = |group| facts(a, Reach::Group(Some(group)));
    assert_eq!(
        release(a, b, &external, &entry(group(false, &[])), Tlp::Green),
        Ok(())
    );
    assert_eq!(
        release(b, c, &external, &entry(group(false, &[])), Tlp::Green),
        Err(Withheld::Distribution)
    );
    assert_eq!(
        release(b, c, &external, &entry(group(true, &[])), Tlp::Green),
        Ok(())
    );
    assert_eq!(
        release(b, c, &external, &entry(group(false, &[b])), Tlp::Green),
        Ok(())
    );
    let mut without_c = group(true, &[]);
    without_c.orgs.remove(&Uuid::from_u128(C));
    assert_eq!(
        release(b, c, &external, &entry(without_c), Tlp::Green),
        Err(Withheld::Distribution)
    );
}

#[test]
fn tlp_ceiling_and_default_tlp_apply() {
    let (a, b) = (party(1, A), party(2, B));
    let amber = rules(Relationship::External, Tlp::Amber);
    let mut entry = facts(a, Reach::Level(3));
    entry.tlp = Some(Tlp::Red);
    assert_eq!(
        release(a, b, &amber, &entry, Tlp::Green),
        Err(Withheld::Tlp(Tlp::Red))
    );
    entry.tlp = None;
    assert_eq!(
        release(a, b, &amber, &entry, Tlp::AmberStrict),
        Err(Withheld::Tlp(Tlp::AmberStrict))
    );
    assert_eq!(release(a, b, &amber, &entry, Tlp::Green), Ok(()));
}

#[test]
fn gates_hold_unpublished_edits_but_not_sightings() {
    let (a, b) = (party(1, A), party(2, B));
    let external = rules(Relationship::External, Tlp::Amber);
    let mut entry = facts(a, Reach::Level(3));
    entry.published_after = false;
    assert_eq!(
        release(a, b, &external, &entry, Tlp::Green),
        Err(Withheld::Unpublished)
    );
    entry.gate = Gate::Sighting;
    assert_eq!(release(a, b, &external, &entry, Tlp::Green), Ok(()));
}

#[test]
fn peer_rules_filter_by_tag_and_creator() {
    let (a, b) = (party(1, A), party(2, B));
    let mut peer = rules(Relationship::External, Tlp::Amber);
    let mut entry = facts(a, Reach::Level(3));
    entry.event_tags = vec!["osint".into()];
    peer.tags_include = vec!["phishing".into()];
    assert_eq!(
        release(a, b, &peer, &entry, Tlp::Green),
        Err(Withheld::Rules)
    );
    peer.tags_include = vec!["osint".into()];
    assert_eq!(release(a, b, &peer, &entry, Tlp::Green), Ok(()));
    // Tags match in any case: an exclusion written `OSINT` excludes `osint`.
    peer.tags_exclude = vec!["OSINT".into()];
    assert_eq!(
        release(a, b, &peer, &entry, Tlp::Green),
        Err(Withheld::Rules)
    );
    peer.tags_exclude = vec![];
    peer.orgs_exclude = vec![Uuid::from_u128(A)];
    assert_eq!(
        release(a, b, &peer, &entry, Tlp::Green),
        Err(Withheld::Rules)
    );
}

#[test]
fn receivers_reject_entries_that_went_further_than_their_level() {
    let (a, b, c) = (party(1, A), party(2, B), party(3, C));
    assert!(check_arrival(a, b, a, &Reach::Level(2)).is_ok());
    assert!(check_arrival(b, c, a, &Reach::Level(2)).is_err());
    assert!(check_arrival(b, c, a, &Reach::Level(3)).is_ok());
    assert!(check_arrival(a, b, a, &Reach::Level(0)).is_err());
    assert!(check_arrival(a, party(4, A), a, &Reach::Level(0)).is_ok());
}

#[test]
fn tlp_tags_parse_with_legacy_white() {
    assert_eq!(Tlp::of_tag("tlp:white"), Some(Tlp::Clear));
    assert_eq!(Tlp::of_tag("tlp:amber+strict"), Some(Tlp::AmberStrict));
    assert_eq!(Tlp::of_tag("tlp:ex:chr"), None);
    // Any case (SPEC §6.2); not a TLP tag unless the namespace is exactly `tlp`.
    assert_eq!(Tlp::of_tag("TLP:RED"), Some(Tlp::Red));
    assert_eq!(Tlp::of_tag("Tlp:Amber+Strict"), Some(Tlp::AmberStrict));
    assert_eq!(Tlp::of_tag("TLP:EX:CHR"), None);
    assert_eq!(Tlp::of_tag("xtlp:red"), None);
    assert_eq!(Tlp::of_tag("tlp"), None);
    assert_eq!(Tlp::of_tag("tl"), None);
    assert_eq!(Tlp::strictest(["TLP:GREEN", "Tlp:Red"]), Some(Tlp::Red));
    assert_eq!(
        Tlp::strictest(["tlp:green", "tlp:red", "osint"]),
        Some(Tlp::Red)
    );
}
