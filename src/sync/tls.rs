//! Mutual TLS identities derived from node keys (SPEC §4.1, §7): each node presents a
//! certificate self-signed by its ed25519 signing key, and accepts a peer only when the key of
//! the peer's certificate was paired. No CA, no passwords.
//!
//! The key a certificate names is its parsed SubjectPublicKeyInfo, never bytes found
//! elsewhere in it: node keys are public (they are on every card and entry), so anyone can
//! write a paired key into an issuer name or an extension of a certificate of their own. The
//! certificate must also be self-signed by that key (strict ed25519 over the exact
//! to-be-signed bytes), and the TLS handshake signature is checked against that same parsed
//! key, so only the holder of a paired key's private half is taken for that node. Everything
//! else in the certificate (names, validity, extensions) is ignored.

use std::sync::{Arc, RwLock};
use tokio_rustls::rustls::{
    self,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::ring,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
};
use x509_parser::oid_registry::OID_SIG_ED25519;
use x509_parser::x509::AlgorithmIdentifier;

use crate::log::{NodeKey, OriginKey};

/// ALPN protocol of gRPC.
const ALPN_H2: &[u8] = b"h2";

/// DER prefix of an Ed25519 PKCS#8 v1 private key, followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a TLS identity could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("cannot build the node certificate: {0}")]
    Certificate(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Why a peer's certificate does not identify a paired node. Every variant is caused by the
/// bytes a peer presented; the handshake is refused with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The bytes are not a DER X.509 certificate.
    #[error("certificate does not parse as X.509: {0}")]
    Parse(String),
    /// Bytes follow the certificate.
    #[error("certificate is followed by {0} more bytes")]
    Trailing(usize),
    /// The SubjectPublicKeyInfo is not an Ed25519 key (RFC 8410).
    #[error("certificate key is not an Ed25519 key")]
    NotEd25519,
    /// The Ed25519 key is malformed: parameters present, or not 32 bytes.
    #[error("certificate's Ed25519 key is malformed")]
    MalformedKey,
    /// The certificate is not signed with Ed25519, or names two different algorithms.
    #[error("certificate is not signed with Ed25519")]
    SignatureAlgorithm,
    /// The signature over the to-be-signed bytes is not the certificate key's.
    #[error("certificate is not self-signed by its key {0}")]
    NotSelfSigned(OriginKey),
    /// A client's key is not paired.
    #[error("node key {0} is not paired")]
    Unpaired(OriginKey),
    /// The server's key is not the one paired for that endpoint.
    #[error("server presents node key {presented}, paired is {expected}")]
    Unexpected {
        /// The paired key.
        expected: OriginKey,
        /// The key of the certificate presented.
        presented: OriginKey,
    },
}

/// The set of paired peer keys, shared with the running server so that pairing and
/// unpairing take effect for new connections at once.
pub type PairedKeys = Arc<RwLock<std::collections::BTreeSet<OriginKey>>>;

/// Whether `algorithm` is Ed25519 with absent parameters, as RFC 8410 requires.
fn is_ed25519(algorithm: &AlgorithmIdentifier<'_>) -> bool {
    algorithm.algorithm == OID_SIG_ED25519 && algorithm.parameters.is_none()
}

/// The node key a certificate proves: the Ed25519 public key of its parsed
/// SubjectPublicKeyInfo, provided the certificate is self-signed by that key (strict ed25519
/// over the exact to-be-signed bytes). Nothing else in the certificate is read.
pub fn certificate_key(certificate: &[u8]) -> Result<OriginKey, CertificateError> {
    let (rest, parsed) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|error| CertificateError::Parse(error.to_string()))?;
    if !rest.is_empty() {
        return Err(CertificateError::Trailing(rest.len()));
    }
    let tbs = &parsed.tbs_certificate;
    let spki = &tbs.subject_pki;
    if spki.algorithm.algorithm != OID_SIG_ED25519 {
        return Err(CertificateError::NotEd25519);
    }
    if spki.algorithm.parameters.is_some() || spki.subject_public_key.unused_bits != 0 {
        return Err(CertificateError::MalformedKey);
    }
    let key = OriginKey::from_slice(&spki.subject_public_key.data)
        .map_err(|_| CertificateError::MalformedKey)?;
    if !is_ed25519(&parsed.signature_algorithm)
        || !is_ed25519(&tbs.signature)
        || parsed.signature_value.unused_bits != 0
    {
        return Err(CertificateError::SignatureAlgorithm);
    }
    key.verify_strict(tbs.as_ref(), &parsed.signature_value.data)
        .map_err(|_| CertificateError::NotSelfSigned(key))?;
    Ok(key)
}

/// A self-signed certificate for `key`, and the key in rustls form.
fn identity(key: &NodeKey) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
    pkcs8.extend_from_slice(&key.seed());
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)
        .map_err(|error| TlsError::Certificate(error.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec![format!("threatlog-{}", key.origin())])
        .map_err(|error| TlsError::Certificate(error.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("threatlog node {}", key.origin()),
    );
    let certificate = params
        .self_signed(&pair)
        .map_err(|error| TlsError::Certificate(error.to_string()))?;
    Ok((certificate.der().clone(), PrivateKeyDer::Pkcs8(der)))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A refusal of the peer's certificate. Its text is ours, so that the operator reads the
/// reason in the peer status (rustls shows a wrapped certificate error only in debug form).
fn refuse(error: CertificateError) -> rustls::Error {
    rustls::Error::General(error.to_string())
}

/// Checks a TLS 1.3 handshake signature: Ed25519 only, strictly verified under the key
/// parsed from the certificate, the same key that was checked against the paired set.
fn verify_handshake(
    message: &[u8],
    certificate: &CertificateDer<'_>,
    signed: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if signed.scheme != SignatureScheme::ED25519 {
        return Err(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    let key = certificate_key(certificate).map_err(refuse)?;
    key.verify_strict(message, signed.signature())
        .map(|()| HandshakeSignatureValid::assertion())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))
}

/// TLS 1.2 is never negotiated (both configurations allow TLS 1.3 only).
fn no_tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::PeerIncompatible(
        rustls::PeerIncompatible::Tls12NotOffered,
    ))
}

/// The server configuration: presents `key`'s certificate and requires a client certificate
/// whose key is in `paired`.
pub fn server_config(key: &NodeKey, paired: PairedKeys) -> Result<rustls::ServerConfig, TlsError> {
    let (certificate, private) = identity(key)?;
    let verifier = Arc::new(PairedClients { paired });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![certificate], private)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// The client configuration: presents `key`'s certificate and accepts only a server whose
/// certificate carries `peer`.
pub fn client_config(key: &NodeKey, peer: OriginKey) -> Result<rustls::ClientConfig, TlsError> {
    let (certificate, private) = identity(key)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ExpectedServer { peer }))
        .with_client_auth_cert(vec![certificate], private)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// Accepts client certificates of paired keys only.
#[derive(Debug)]
struct PairedClients {
    paired: PairedKeys,
}

impl PairedClients {
    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<OriginKey, CertificateError> {
        let key = certificate_key(end_entity)?;
        // A poisoned lock still holds a valid set: it is only ever replaced whole.
        let paired = self.paired.read().unwrap_or_else(|e| e.into_inner());
        if paired.contains(&key) {
            Ok(key)
        } else {
            Err(CertificateError::Unpaired(key))
        }
    }
}

impl ClientCertVerifier for PairedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.check(end_entity) {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(CertificateError::Unpaired(key)) => {
                tracing::warn!(peer = %key, "refused a TLS client whose key is not paired");
                Err(refuse(CertificateError::Unpaired(key)))
            }
            Err(error) => {
                tracing::warn!("refused a TLS client certificate: {error}");
                Err(refuse(error))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Accepts the one server certificate whose key is the expected peer's.
#[derive(Debug)]
struct ExpectedServer {
    peer: OriginKey,
}

impl ServerCertVerifier for ExpectedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = |error: CertificateError| {
            tracing::warn!(peer = %self.peer, "refused the peer's TLS certificate: {error}");
            refuse(error)
        };
        match certificate_key(end_entity) {
            Ok(key) if key == self.peer => Ok(ServerCertVerified::assertion()),
            Ok(presented) => Err(refused(CertificateError::Unexpected {
                expected: self.peer,
                presented,
            })),
            Err(error) => Err(refused(error)),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Length of an Ed25519 signature, the last bytes of an Ed25519-signed certificate.
    const SIGNATURE_BYTES: usize = 64;

    /// The to-be-signed part of a DER certificate (both lengths in the long two-byte form,
    /// as every node certificate is between 256 and 65535 bytes).
    fn tbs(der: &[u8]) -> &[u8] {
        assert_eq!((der[1], der[5]), (0x82, 0x82));
        let length = usize::from(der[6]) << 8 | usize::from(der[7]);
        &der[4..8 + length]
    }

    /// `der` with its signature replaced by `signer`'s over its to-be-signed part.
    fn signed_by(mut der: Vec<u8>, signer: &NodeKey) -> Vec<u8> {
        let signature = signer.sign(tbs(&der));
        let end = der.len();
        der[end - SIGNATURE_BYTES..].copy_from_slice(&signature);
        der
    }

    fn der_of(key: &NodeKey) -> Vec<u8> {
        identity(key).unwrap().0.to_vec()
    }

    #[test]
    fn the_certificate_carries_the_node_key() {
        let key = NodeKey::generate();
        assert_eq!(certificate_key(&der_of(&key)), Ok(key.origin()));
    }

    #[test]
    fn a_paired_key_written_before_the_real_one_is_ignored() {
        let (forger, paired) = (NodeKey::generate(), NodeKey::generate());
        let placeholder = "X".repeat(44);
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from([&ED25519_PKCS8_PREFIX[..], &forger.seed()].concat()),
            &rcgen::PKCS_ED25519,
        )
        .unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap();
        params.distinguished_name.push(
            rcgen::DnType::OrganizationName,
            rcgen::DnValue::TeletexString(placeholder.as_str().try_into().unwrap()),
        );
        let mut der = params.self_signed(&pair).unwrap().der().to_vec();
        let at = der
            .windows(placeholder.len())
            .position(|window| window == placeholder.as_bytes())
            .unwrap();
        // The DER of an Ed25519 SubjectPublicKeyInfo holding the paired key, in the issuer.
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(&paired.origin().0);
        der[at..at + spki.len()].copy_from_slice(&spki);
        let der = signed_by(der, &forger);
        assert_eq!(certificate_key(&der), Ok(forger.origin()));
    }

    #[test]
    fn a_certificate_not_signed_by_its_own_key_is_refused() {
        let (key, other) = (NodeKey::generate(), NodeKey::generate());
        let by_other = signed_by(der_of(&key), &other);
        assert_eq!(
            certificate_key(&by_other),
            Err(CertificateError::NotSelfSigned(key.origin()))
        );
        let mut flipped = der_of(&key);
        let end = flipped.len();
        flipped[end - 1] ^= 0x01;
        assert_eq!(
            certificate_key(&flipped),
            Err(CertificateError::NotSelfSigned(key.origin()))
        );
        // A changed byte inside the signed part: the signature no longer covers it.
        let mut altered = der_of(&key);
        let at = altered.len() / 2;
        altered[at] ^= 0x01;
        assert!(certificate_key(&altered).is_err());
    }

    #[test]
    fn other_key_types_trailing_bytes_and_garbage_are_refused() {
        let ecdsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let der = rcgen::CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&ecdsa)
            .unwrap()
            .der()
            .to_vec();
        assert_eq!(certificate_key(&der), Err(CertificateError::NotEd25519));
        let mut trailing = der_of(&NodeKey::generate());
        trailing.push(0);
        assert_eq!(
            certificate_key(&trailing),
            Err(CertificateError::Trailing(1))
        );
        assert!(matches!(
            certificate_key(b"not a certificate"),
            Err(CertificateError::Parse(_))
        ));
    }
}
