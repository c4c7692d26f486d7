//! Mutual TLS for TCP listeners, as Docker's `--tlsverify`: the server presents its
//! certificate and accepts only clients whose certificate chains to the given CA. One crypto
//! provider (ring), installed explicitly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;

/// Failures loading the TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no certificate or private key found in {path}")]
    Pem { path: PathBuf },
    #[error("invalid TLS configuration")]
    Rustls(#[from] rustls::Error),
    #[error("invalid CA certificate")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The PEM files of `--tlscacert`, `--tlscert` and `--tlskey`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut read(path)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// A TLS acceptor that requires a client certificate signed by the CA.
pub fn mutual_tls_acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates(&files.ca)? {
        roots.add(ca)?;
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build()?;
    let key = rustls_pemfile::private_key(&mut read(&files.key)?.as_slice())
        .map_err(|source| TlsError::Read {
            path: files.key.clone(),
            source,
        })?
        .ok_or_else(|| TlsError::Pem {
            path: files.key.clone(),
        })?;
    let config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(&files.cert)?, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
