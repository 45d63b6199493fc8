//! Mutual TLS identities derived from node keys (SPEC §7): each node presents a self-signed
//! certificate for its ed25519 signing key, and accepts a peer only when the key in the
//! peer's certificate was paired. No CA, no passwords.

use std::sync::{Arc, RwLock};
use tokio_rustls::rustls::{
    self,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{ring, verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
};

use crate::log::{NodeKey, OriginKey};

/// ALPN protocol of gRPC.
const ALPN_H2: &[u8] = b"h2";

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

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

/// The set of paired peer keys, shared with the running server so that pairing and
/// unpairing take effect for new connections at once.
pub type PairedKeys = Arc<RwLock<std::collections::BTreeSet<OriginKey>>>;

/// The node key found in a certificate: the Ed25519 public key of its SubjectPublicKeyInfo.
pub fn certificate_key(certificate: &[u8]) -> Option<OriginKey> {
    let at = certificate
        .windows(ED25519_SPKI_PREFIX.len())
        .position(|window| window == ED25519_SPKI_PREFIX)?;
    let start = at + ED25519_SPKI_PREFIX.len();
    OriginKey::from_slice(certificate.get(start..start + 32)?).ok()
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

/// Only Ed25519 handshake signatures, as every node key is Ed25519.
fn algorithms() -> WebPkiSupportedAlgorithms {
    ring::default_provider().signature_verification_algorithms
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

fn refuse(reason: &str) -> rustls::Error {
    rustls::Error::General(reason.to_string())
}

/// Accepts client certificates of paired keys only.
#[derive(Debug)]
struct PairedClients {
    paired: PairedKeys,
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
        let key = certificate_key(end_entity)
            .ok_or_else(|| refuse("client certificate carries no Ed25519 node key"))?;
        // A poisoned lock still holds a valid set: it is only ever replaced whole.
        let paired = self.paired.read().unwrap_or_else(|e| e.into_inner());
        if paired.contains(&key) {
            Ok(ClientCertVerified::assertion())
        } else {
            tracing::warn!(peer = %key, "refused a TLS client whose key is not paired");
            Err(refuse("node key is not paired"))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Accepts the one server certificate that carries the expected peer key.
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
        match certificate_key(end_entity) {
            Some(key) if key == self.peer => Ok(ServerCertVerified::assertion()),
            Some(_) => Err(refuse("server presents a different node key than paired")),
            None => Err(refuse("server certificate carries no Ed25519 node key")),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_carries_the_node_key() {
        let key = NodeKey::generate();
        let (certificate, _) = identity(&key).unwrap();
        assert_eq!(certificate_key(&certificate), Some(key.origin()));
    }
}
