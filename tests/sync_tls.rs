//! TLS peer identity (SPEC §4.1, §7) against forged certificates, with real nodes over real
//! mutual TLS. A node's key is public (it is on every card and entry), so an attacker can
//! write it anywhere in a certificate of its own; only the certificate's actual
//! SubjectPublicKeyInfo, self-signed, may name the peer. The forger here holds a fresh key and
//! builds, with rcgen, a certificate for it whose issuer carries a paired node's public key
//! (in the DER form of an Ed25519 SubjectPublicKeyInfo, ahead of the real one).
//!
//! Both directions: a forged client certificate presented to a node's sync service, and a
//! forged server certificate presented to a node's client when it dials a paired peer. Each
//! attack runs beside a control that uses the same code with an honest certificate, so a
//! refusal can only come from the certificate.

mod common;

use common::nodes::{add_event, addresses, pair, values, wait_for, Peer};
use common::ok;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use threatlog::log::{NodeKey, OriginKey};
use threatlog::proto::sync as wire;
use threatlog::sync::peer::Card;
use tokio_rustls::rustls::{
    self,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
    DigitallySignedStruct, SignatureScheme,
};

/// DER prefix of an Ed25519 PKCS#8 v1 private key, followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// An issuer attribute value of the length of an Ed25519 SubjectPublicKeyInfo, replaced in
/// the DER by the impersonated node's SubjectPublicKeyInfo.
const PLACEHOLDER: &str = "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
/// Length of an Ed25519 signature, the last bytes of an Ed25519-signed certificate.
const SIGNATURE_BYTES: usize = 64;
/// Longest one gRPC call of the attacker may take.
const CALL_SECONDS_MAX: u64 = 30;

fn pkcs8(key: &NodeKey) -> Vec<u8> {
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&key.seed());
    der
}

fn key_pair(key: &NodeKey) -> rcgen::KeyPair {
    let der = PrivatePkcs8KeyDer::from(pkcs8(key));
    rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519).unwrap()
}

/// A self-signed certificate for `key` with `attributes` as its subject (and so its issuer).
fn self_signed(key: &NodeKey, attributes: Vec<(rcgen::DnType, rcgen::DnValue)>) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(vec!["threatlog-peer".to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (kind, value) in attributes {
        params.distinguished_name.push(kind, value);
    }
    params.self_signed(&key_pair(key)).unwrap().der().to_vec()
}

/// An honest certificate: self-signed by `key`, naming nothing else.
fn honest_certificate(key: &NodeKey) -> Vec<u8> {
    self_signed(
        key,
        vec![(
            rcgen::DnType::CommonName,
            rcgen::DnValue::Utf8String("an honest node".into()),
        )],
    )
}

/// The length of the DER header and of the content of the element at `at`.
fn der_element(der: &[u8], at: usize) -> (usize, usize) {
    match der[at + 1] {
        short if short < 0x80 => (2, usize::from(short)),
        0x81 => (3, usize::from(der[at + 2])),
        0x82 => (4, usize::from(der[at + 2]) << 8 | usize::from(der[at + 3])),
        other => panic!("unexpected DER length form {other:#x}"),
    }
}

/// A certificate for `key`, validly self-signed by it, whose issuer carries `impersonated` in
/// the DER form of an Ed25519 SubjectPublicKeyInfo (before the certificate's real one).
fn forged_certificate(key: &NodeKey, impersonated: &OriginKey) -> Vec<u8> {
    let placeholder = rcgen::DnValue::TeletexString(PLACEHOLDER.try_into().unwrap());
    let mut der = self_signed(
        key,
        vec![
            (rcgen::DnType::OrganizationName, placeholder),
            (
                rcgen::DnType::CommonName,
                rcgen::DnValue::Utf8String("a forger".into()),
            ),
        ],
    );
    // The issuer comes before the subject: the first occurrence is the issuer's attribute.
    let at = der
        .windows(PLACEHOLDER.len())
        .position(|window| window == PLACEHOLDER.as_bytes())
        .unwrap();
    let mut spki = ED25519_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(&impersonated.0);
    assert_eq!(spki.len(), PLACEHOLDER.len());
    der[at..at + spki.len()].copy_from_slice(&spki);
    // Sign the altered to-be-signed part again with the forger's own key: the certificate is
    // a valid self-signed certificate of the forger's key.
    let (outer_header, _) = der_element(&der, 0);
    let (tbs_header, tbs_length) = der_element(&der, outer_header);
    let tbs = der[outer_header..outer_header + tbs_header + tbs_length].to_vec();
    let signature = key.sign(&tbs);
    let end = der.len();
    der[end - SIGNATURE_BYTES..].copy_from_slice(&signature);
    der
}

/// The attacker's TLS client accepts any server: only the server's check is under test.
#[derive(Debug)]
struct AnyServer;

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Says hello to the sync service at `endpoint` presenting `certificate` (and proving
/// possession of `key`, the key of its real SubjectPublicKeyInfo).
fn hello_with(
    runtime: &tokio::runtime::Runtime,
    certificate: Vec<u8>,
    key: &NodeKey,
    endpoint: &str,
) -> Result<wire::HelloResponse, String> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer))
        .with_client_auth_cert(
            vec![CertificateDer::from(certificate)],
            PrivateKeyDer::Pkcs8(pkcs8(key).into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let config = Arc::new(config);
    let endpoint = endpoint.to_string();
    runtime.block_on(async move {
        let call = async move {
            let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
                let config = Arc::clone(&config);
                let endpoint = endpoint.clone();
                async move {
                    let tcp = tokio::net::TcpStream::connect(&endpoint).await?;
                    let name = ServerName::try_from("threatlog-peer").unwrap();
                    let tls = tokio_rustls::TlsConnector::from(config)
                        .connect(name, tcp)
                        .await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            });
            let channel = tonic::transport::Endpoint::from_static("http://threatlog-peer")
                .connect_with_connector(connector)
                .await
                .map_err(|error| format!("connect: {error:?}"))?;
            let mut client = wire::sync_client::SyncClient::new(channel);
            client
                .hello(wire::HelloRequest {
                    protocol_version: threatlog::sync::PROTOCOL_VERSION,
                    node: None,
                    checkpoints: vec![],
                })
                .await
                .map(|response| response.into_inner())
                .map_err(|status| format!("{}: {}", status.code(), status.message()))
        };
        tokio::time::timeout(Duration::from_secs(CALL_SECONDS_MAX), call)
            .await
            .expect("the hello is answered or refused")
    })
}

/// A TLS server standing in for a paired peer: it presents the peer's honest certificate
/// until `forging` is set, then a forged one, and counts the handshakes each way.
struct FakePeer {
    /// Its address, the endpoint on the peer's card.
    addr: String,
    /// Present the forged certificate from now on.
    forging: Arc<AtomicBool>,
    /// Handshakes completed with the honest certificate.
    honest: Arc<AtomicUsize>,
    /// Handshakes completed with the forged certificate.
    forged: Arc<AtomicUsize>,
    /// Handshakes the client broke off while the forged certificate was presented.
    refused: Arc<AtomicUsize>,
}

fn server_config(certificate: Vec<u8>, key: &NodeKey) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(certificate)],
            PrivateKeyDer::Pkcs8(pkcs8(key).into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

impl FakePeer {
    fn start(runtime: &tokio::runtime::Runtime, peer: &NodeKey, forger: &NodeKey) -> FakePeer {
        let honest_config = server_config(honest_certificate(peer), peer);
        let forged_config = server_config(forged_certificate(forger, &peer.origin()), forger);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let fake = FakePeer {
            addr: listener.local_addr().unwrap().to_string(),
            forging: Arc::default(),
            honest: Arc::default(),
            forged: Arc::default(),
            refused: Arc::default(),
        };
        let (forging, honest, forged, refused) = (
            Arc::clone(&fake.forging),
            Arc::clone(&fake.honest),
            Arc::clone(&fake.forged),
            Arc::clone(&fake.refused),
        );
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let forge = forging.load(Ordering::SeqCst);
                let config = if forge {
                    Arc::clone(&forged_config)
                } else {
                    Arc::clone(&honest_config)
                };
                let (honest, forged, refused) = (
                    Arc::clone(&honest),
                    Arc::clone(&forged),
                    Arc::clone(&refused),
                );
                tokio::spawn(async move {
                    let accepted = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await;
                    // The connection is dropped at once: this peer speaks no gRPC.
                    match (accepted.is_ok(), forge) {
                        (true, false) => honest.fetch_add(1, Ordering::SeqCst),
                        (true, true) => forged.fetch_add(1, Ordering::SeqCst),
                        (false, true) => refused.fetch_add(1, Ordering::SeqCst),
                        (false, false) => 0,
                    };
                });
            }
        });
        fake
    }
}

#[test]
fn a_certificate_carrying_a_paired_key_it_does_not_hold_is_refused_both_ways() {
    let temp = tempfile::tempdir().unwrap();
    let b_log = temp.path().join("b.log");
    let a = Peer::start("Org A");
    let b = Peer::start_logged("Org B", &b_log);
    pair(&a, &b, &["--relationship", "external"]);
    let a_key = Card::decode(&a.card()).unwrap().key;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = add_event(&a, "before the attacks", 3, &addresses("192.0.2", 2));
    a.publish(&first);
    wait_for("A's event on B", || b.event(&first));

    // Server side. Control: H, paired on B, says hello with its honest certificate.
    let h = NodeKey::generate();
    let card = Card {
        key: h.origin(),
        org_uuid: uuid::Uuid::new_v4(),
        org_name: "Org H".into(),
        endpoint: "127.0.0.1:9".into(),
        org_key: None,
    };
    ok(
        b.dir(),
        &[
            "peer",
            "add",
            &card.encode(),
            "--relationship",
            "external",
            "--no-pull",
            "--no-push",
        ],
    );
    let greeting = hello_with(&runtime, honest_certificate(&h), &h, &b.sync_addr())
        .expect("a paired key with an honest certificate is served");
    assert_eq!(
        greeting.node.unwrap().node_key.to_vec(),
        Card::decode(&b.card()).unwrap().key.0.to_vec()
    );
    // The attack: F holds only its own key, and carries A's key in its certificate's issuer.
    let f = NodeKey::generate();
    let forged = forged_certificate(&f, &a_key);
    let refused = hello_with(&runtime, forged, &f, &b.sync_addr());
    assert!(
        refused.is_err(),
        "B served a client that only carries A's key: {refused:?}"
    );
    // B read the certificate's real key, F's, and refused it as unpaired.
    let f_hex = f.origin().to_string();
    wait_for("B to log the refused handshake with F's key", || {
        let log = std::fs::read_to_string(&b_log).unwrap_or_default();
        log.lines()
            .find(|line| line.contains("refused a TLS client") && line.contains(&f_hex))
            .map(str::to_string)
    });

    // Client side: A pairs with P, whose endpoint is a server this test runs. It presents
    // P's honest certificate first (control: A completes the handshake), then a certificate
    // of F's key that carries P's key in its issuer.
    let p = NodeKey::generate();
    let fake = FakePeer::start(&runtime, &p, &f);
    let card = Card {
        key: p.origin(),
        org_uuid: uuid::Uuid::new_v4(),
        org_name: "Org P".into(),
        endpoint: fake.addr.clone(),
        org_key: None,
    };
    ok(
        a.dir(),
        &["peer", "add", &card.encode(), "--relationship", "external"],
    );
    wait_for("A's handshake with P's honest certificate", || {
        (fake.honest.load(Ordering::SeqCst) >= 1).then_some(())
    });
    fake.forging.store(true, Ordering::SeqCst);
    wait_for("A's next handshake with the forged certificate", || {
        (fake.forged.load(Ordering::SeqCst) + fake.refused.load(Ordering::SeqCst) >= 1)
            .then_some(())
    });
    assert_eq!(
        fake.forged.load(Ordering::SeqCst),
        0,
        "A completed a handshake with a server that only carries P's key"
    );
    // A records why, naming the key the certificate really holds.
    let expected = format!(
        "server presents node key {}, paired is {}",
        f.origin(),
        p.origin()
    );
    wait_for("A to record the refused certificate", || {
        a.peers()
            .as_array()
            .unwrap()
            .iter()
            .find(|peer| peer["org_name"] == "Org P")
            .and_then(|peer| peer["status"]["last_error"].as_str().map(str::to_string))
            .filter(|error| error.contains(&expected))
    });

    // The honest nodes go on syncing both ways.
    let later = add_event(&a, "after the attacks", 3, &addresses("198.51.100", 3));
    a.publish(&later);
    let arrived = wait_for("A's later event on B", || b.event(&later));
    assert_eq!(values(&arrived), addresses("198.51.100", 3));
    let back = add_event(&b, "B's event", 3, &addresses("203.0.113", 2));
    b.publish(&back);
    let arrived = wait_for("B's event on A", || a.event(&back));
    assert_eq!(values(&arrived), addresses("203.0.113", 2));
    let a_on_b = b
        .peers()
        .as_array()
        .unwrap()
        .iter()
        .find(|peer| peer["org_name"] == "Org A")
        .cloned()
        .unwrap();
    assert_eq!(a_on_b["status"]["violations"], 0, "{a_on_b}");
}
