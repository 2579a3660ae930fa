//! TLS for the XKS side: a throw-away certificate authority (rcgen) for the reference proxy and
//! its tests, and the rustls configurations of the proxy and of the clients that call it.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A TLS failure in set-up (bad PEM, a certificate rustls refuses), with the reason.
pub type TlsError = String;

/// A certificate authority made at start; it signs server and client certificates.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA certificate, DER.
    pub cert_der: CertificateDer<'static>,
}

/// A certificate chain with its private key.
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (a secret: never printed).
    pub key_pem: String,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A new CA whose certificate carries `common_name`.
    pub fn generate(common_name: &str) -> Result<Authority, TlsError> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        Ok(Authority {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A server certificate for these DNS names, signed by this CA.
    pub fn server(&self, hosts: &[&str]) -> Result<Identity, TlsError> {
        let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = CertificateParams::new(names).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(DnType::CommonName, hosts.first().copied().unwrap_or("xks"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate with this subject common name (KMS's is
    /// `cks.kms.<region>.amazonaws.com`), signed by this CA.
    pub fn client(&self, common_name: &str) -> Result<Identity, TlsError> {
        let mut params =
            CertificateParams::new(vec![common_name.to_string()]).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Result<Identity, TlsError> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        let key_pem = key.serialize_pem();
        Ok(Identity {
            chain: vec![cert.der().clone(), self.cert_der.clone()],
            key: PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| e.to_string())?,
            cert_pem: cert.pem(),
            key_pem,
        })
    }
}

impl Identity {
    /// Reads a certificate chain and a private key from PEM text.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Identity, TlsError> {
        let chain = certs_from_pem(cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| format!("no private key in the PEM text: {e}"))?;
        Ok(Identity {
            chain,
            key,
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
        })
    }
}

/// Every certificate in PEM text; an error when there is none.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM text".into());
    }
    Ok(certs)
}

/// Which certificate authorities a client trusts.
#[derive(Debug, Clone)]
pub enum Roots {
    /// The CA certificates in this PEM text.
    Pem(String),
    /// The operating system's trust store.
    System,
}

/// The crypto provider (ring) restricted to the suites the XKS spec allows: TLS 1.3
/// `TLS_AES_256_GCM_SHA384`, `TLS_CHACHA20_POLY1305_SHA256`, TLS 1.2 ECDHE with AES-256-GCM.
pub fn xks_provider() -> Arc<rustls::crypto::CryptoProvider> {
    use provider::cipher_suite as cs;
    Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        ..provider::default_provider()
    })
}

/// A client configuration trusting `roots`, presenting `identity` when the server asks for a
/// client certificate, speaking HTTP/1.1.
pub fn client_config(roots: &Roots, identity: Option<&Identity>) -> Result<ClientConfig, TlsError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::Pem(pem) => {
            for cert in certs_from_pem(pem)? {
                store
                    .add(cert)
                    .map_err(|e| format!("CA certificate refused: {e}"))?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err("no trusted certificates in the system store; give --ca-cert".into());
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| format!("client certificate refused: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A server configuration presenting `identity` with the XKS suites; with `client_ca`, every
/// client must present a certificate chaining to it (mutual TLS).
pub fn server_config(
    identity: &Identity,
    client_ca: Option<&CertificateDer<'static>>,
) -> Result<ServerConfig, TlsError> {
    let provider = xks_provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let builder = match client_ca {
        Some(ca) => {
            let mut store = RootCertStore::empty();
            store.add(ca.clone()).map_err(|e| e.to_string())?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
                .build()
                .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| format!("server certificate refused: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_trusting_the_ca_accepts_the_server_certificate_and_pem_round_trips() {
        let ca = Authority::generate("ckscheck test CA").unwrap();
        let server = ca.server(&["proxy.example.test"]).unwrap();
        assert!(server_config(&server, None).is_ok());
        assert!(server_config(&server, Some(&ca.cert_der)).is_ok());
        let again = Identity::from_pem(&server.cert_pem, &server.key_pem).unwrap();
        assert_eq!(again.chain[0], server.chain[0]);
        assert!(client_config(&Roots::Pem(ca.cert_pem.clone()), None).is_ok());
        let client = ca.client("cks.kms.us-east-1.amazonaws.com").unwrap();
        assert!(client_config(&Roots::Pem(ca.cert_pem.clone()), Some(&client)).is_ok());
    }

    #[test]
    fn pem_without_a_certificate_is_refused_with_the_reason() {
        let err = client_config(&Roots::Pem("hello".into()), None).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        let err = Identity::from_pem("", "").unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
    }
}
