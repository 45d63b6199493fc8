use super::*;
use crate::log::{seal, Draft, Head, NodeKey, VerifiedEntry};
use crate::proto::op::Op;

const ORG: Uuid = Uuid::from_u128(0x0a);
const NOW_MS: i64 = 1_700_000_000_000;

fn certificate(org_key: &OrgKey, node: &NodeKey, expires_ms: Option<i64>) -> Certificate {
    Certificate::issue(org_key, ORG, "Org A", node.origin(), NOW_MS, expires_ms).unwrap()
}

/// The entry at `sequence` of `node`'s chain (a chain of throwaway links before it), dated
/// `time_ms`, acting for `acting`.
fn entry(node: &NodeKey, sequence: u64, time_ms: i64, acting: Uuid) -> VerifiedEntry {
    let head = Head {
        sequence: sequence - 1,
        hash: [1; 32],
    };
    let draft = Draft {
        acting_org: acting,
        acting_user: "admin@a.example".into(),
        event: Some(Uuid::from_u128(0xe)),
        visibility: proto::Visibility::default(),
        ops: vec![],
    };
    seal(node, ORG, &head, draft, time_ms, [2; 16]).unwrap()
}

#[test]
fn a_certificate_verifies_over_its_exact_bytes() {
    let org_key = OrgKey::generate();
    let node = NodeKey::generate();
    let issued = certificate(&org_key, &node, Some(NOW_MS + 1000));
    let verified = Certificate::verify(issued.stored().clone()).unwrap();
    assert_eq!(verified, issued);
    assert_eq!(verified.org_uuid, ORG);
    assert_eq!(verified.org_name, "Org A");
    assert_eq!(verified.node_key, node.origin());
    assert_eq!(verified.org_key, org_key.public());
    assert_eq!(verified.expires_ms, Some(NOW_MS + 1000));
    assert_eq!(Certificate::from_text(&issued.to_text()).unwrap(), issued);
    assert_eq!(Certificate::from_op(&issued.to_proto()).unwrap(), issued);
}

#[test]
fn every_flipped_byte_of_a_certificate_is_refused() {
    let issued = certificate(&OrgKey::generate(), &NodeKey::generate(), None);
    let stored = issued.stored().to_vec();
    for index in 0..stored.len() {
        let mut tampered = stored.clone();
        tampered[index] ^= 0x01;
        assert!(
            Certificate::verify(Bytes::from(tampered)).is_err(),
            "flipping byte {index} was not detected"
        );
    }
}

#[test]
fn a_certificate_naming_another_org_key_than_its_signer_is_refused() {
    // The attacker signs with its own key a body naming the victim's org key.
    let victim = OrgKey::generate();
    let attacker = OrgKey::generate();
    let body = proto::NodeCertificateBody {
        format_version: STATEMENT_FORMAT_VERSION,
        org_uuid: Bytes::copy_from_slice(ORG.as_bytes()),
        org_name: "Org A".into(),
        node_key: Bytes::copy_from_slice(&NodeKey::generate().origin().0),
        org_key: Bytes::copy_from_slice(&victim.public().0),
        issued_ms: NOW_MS,
        expires_ms: 0,
    };
    let body = Bytes::from(body.encode_to_vec());
    let signature = attacker.sign(CERTIFICATE_CONTEXT, &body);
    assert_eq!(
        Certificate::verify(seal_envelope(body.clone(), signature)),
        Err(IdentityError::BadSignature("node certificate"))
    );
    // A revocation's signature over the same body does not make a certificate either.
    let signature = victim.sign(REVOCATION_CONTEXT, &body);
    assert_eq!(
        Certificate::verify(seal_envelope(body, signature)),
        Err(IdentityError::BadSignature("node certificate"))
    );
}

#[test]
fn a_non_canonical_envelope_and_an_unknown_version_are_refused() {
    let issued = certificate(&OrgKey::generate(), &NodeKey::generate(), None);
    // The same fields, framed with a trailing empty field: another encoding, another hash.
    let mut padded = issued.stored().to_vec();
    padded.extend_from_slice(&[0x1a, 0x00]);
    assert!(Certificate::verify(Bytes::from(padded)).is_err());
    let org_key = OrgKey::generate();
    let body = proto::NodeCertificateBody {
        format_version: 2,
        org_uuid: Bytes::copy_from_slice(ORG.as_bytes()),
        org_key: Bytes::copy_from_slice(&org_key.public().0),
        node_key: Bytes::copy_from_slice(&[9; 32]),
        ..Default::default()
    };
    let body = Bytes::from(body.encode_to_vec());
    let signature = org_key.sign(CERTIFICATE_CONTEXT, &body);
    assert_eq!(
        Certificate::verify(seal_envelope(body, signature)),
        Err(IdentityError::Version {
            what: "node certificate",
            version: 2
        })
    );
}

#[test]
fn an_expired_certificate_covers_only_entries_before_its_expiry() {
    let issued = certificate(&OrgKey::generate(), &NodeKey::generate(), Some(NOW_MS));
    assert!(issued.covers_time(NOW_MS - 1));
    assert!(!issued.covers_time(NOW_MS));
    assert!(certificate(&OrgKey::generate(), &NodeKey::generate(), None).covers_time(i64::MAX));
}

#[test]
fn a_revocation_verifies_and_withdraws_only_its_signers_certificates() {
    let org_key = OrgKey::generate();
    let node = NodeKey::generate();
    let revocation =
        Revocation::issue(&org_key, ORG, node.origin(), 5, NOW_MS, "key stolen").unwrap();
    assert_eq!(
        Revocation::verify(revocation.stored().clone()).unwrap(),
        revocation
    );
    assert_eq!(
        Revocation::from_op(&revocation.to_proto()).unwrap(),
        revocation
    );
    let own = certificate(&org_key, &node, None);
    assert!(!revocation.revokes(&own, 4));
    assert!(revocation.revokes(&own, 5));
    let by_other_key = certificate(&OrgKey::generate(), &node, None);
    assert!(!revocation.revokes(&by_other_key, 9));
    let stored = revocation.stored().to_vec();
    for index in 0..stored.len() {
        let mut tampered = stored.clone();
        tampered[index] ^= 0x80;
        assert!(
            Revocation::verify(Bytes::from(tampered)).is_err(),
            "byte {index}"
        );
    }
}

#[test]
fn a_roster_verifies_and_refuses_tampering_and_other_signers() {
    let operator = OrgKey::generate();
    let members = vec![
        RosterMember {
            org_uuid: ORG,
            org_name: "Org A".into(),
            org_keys: vec![OrgKey::generate().public()],
        },
        RosterMember {
            org_uuid: Uuid::from_u128(0x0b),
            org_name: "Org B".into(),
            org_keys: vec![OrgKey::generate().public(), OrgKey::generate().public()],
        },
    ];
    let roster = Roster::issue(&operator, &members, NOW_MS).unwrap();
    let verified = Roster::from_text(&roster.to_text()).unwrap();
    assert_eq!(verified.operator_key, operator.public());
    assert_eq!(verified.members, members);
    let stored = roster.stored().to_vec();
    for index in 0..stored.len() {
        let mut tampered = stored.clone();
        tampered[index] ^= 0x01;
        assert!(
            Roster::verify(Bytes::from(tampered)).is_err(),
            "byte {index}"
        );
    }
    let empty = RosterMember {
        org_keys: vec![],
        ..members[0].clone()
    };
    assert!(matches!(
        Roster::issue(&operator, &[empty], NOW_MS),
        Err(IdentityError::Field {
            field: "org_keys",
            ..
        })
    ));
}

#[test]
fn the_judge_accepts_only_a_bound_unexpired_unrevoked_certificate() {
    let org_key = OrgKey::generate();
    let node = NodeKey::generate();
    let cert = certificate(&org_key, &node, Some(NOW_MS + 10));
    let bound = [org_key.public()];
    let known = |certificates, revocations, bound_keys| Known {
        certificates,
        revocations,
        bound_keys,
        acting_org_bound: false,
    };
    let entry3 = entry(&node, 3, NOW_MS, ORG);
    let certs = [cert.clone()];
    assert_eq!(judge(&entry3, known(&certs, &[], &bound)), Ok(()));
    assert_eq!(
        judge(&entry3, known(&[], &[], &bound)),
        Err(IdentityRefusal::NoCertificate {
            origin: node.origin()
        })
    );
    // Bound to another org key: an identity conflict.
    let other = OrgKey::generate().public();
    let others = [other];
    assert_eq!(
        judge(&entry3, known(&certs, &[], &others)),
        Err(IdentityRefusal::Conflict {
            origin: node.origin(),
            org: ORG,
            certified_by: org_key.public(),
            bound: other,
        })
    );
    // Dated at the expiry.
    let late = entry(&node, 3, NOW_MS + 10, ORG);
    assert_eq!(
        judge(&late, known(&certs, &[], &bound)),
        Err(IdentityRefusal::Expired {
            origin: node.origin(),
            expires_ms: NOW_MS + 10,
            time_ms: NOW_MS + 10
        })
    );
    // Revoked from sequence 3, not before.
    let revocation = Revocation::issue(&org_key, ORG, node.origin(), 3, NOW_MS, "").unwrap();
    let revocations = [revocation];
    assert_eq!(
        judge(
            &entry(&node, 2, NOW_MS, ORG),
            known(&certs, &revocations, &bound)
        ),
        Ok(())
    );
    assert_eq!(
        judge(&entry3, known(&certs, &revocations, &bound)),
        Err(IdentityRefusal::Revoked {
            origin: node.origin(),
            from_sequence: 3,
            sequence: 3
        })
    );
    // Certified for another organisation than the entry claims.
    let elsewhere = Certificate::issue(
        &org_key,
        Uuid::from_u128(0x0b),
        "Org B",
        node.origin(),
        NOW_MS,
        None,
    )
    .unwrap();
    assert_eq!(
        judge(&entry3, known(&[elsewhere], &[], &bound)),
        Err(IdentityRefusal::OtherOrg {
            origin: node.origin(),
            certified: Uuid::from_u128(0x0b),
            claimed: ORG
        })
    );
}

#[test]
fn the_judge_refuses_acting_for_an_org_with_its_own_key() {
    let org_key = OrgKey::generate();
    let node = NodeKey::generate();
    let cert = [certificate(&org_key, &node, None)];
    let bound = [org_key.public()];
    let hosted = Uuid::from_u128(0x0c);
    let entry = entry(&node, 1, NOW_MS, hosted);
    let known = |acting_org_bound| Known {
        certificates: &cert,
        revocations: &[],
        bound_keys: &bound,
        acting_org_bound,
    };
    assert_eq!(judge(&entry, known(false)), Ok(()));
    assert_eq!(
        judge(&entry, known(true)),
        Err(IdentityRefusal::ActsForKeyedOrg {
            org: ORG,
            acting: hosted
        })
    );
}

#[test]
fn an_entry_carrying_another_nodes_certificate_is_refused() {
    let org_key = OrgKey::generate();
    let node = NodeKey::generate();
    let stranger = certificate(&org_key, &NodeKey::generate(), None);
    let draft = Draft {
        acting_org: ORG,
        acting_user: "admin@a.example".into(),
        event: None,
        visibility: proto::Visibility::default(),
        ops: vec![proto::Op {
            op: Some(Op::Certificate(stranger.to_proto())),
        }],
    };
    let entry = seal(&node, ORG, &Head::EMPTY, draft, NOW_MS, [3; 16]).unwrap();
    let refusal = check_statements(&entry).unwrap_err();
    assert!(
        refusal
            .to_string()
            .starts_with("identity: the entry carries a certificate of node"),
        "{refusal}"
    );
}
