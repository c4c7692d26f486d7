//! Serving the router on a TCP listener, plain or with TLS (rustls, ring provider
//! installed explicitly), until the shutdown future completes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use thiserror::Error;
use tokio::net::TcpListener;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no certificate or private key found in {}", path.display())]
    Pem { path: PathBuf },
    #[error("invalid TLS certificate or key")]
    Tls(#[from] rustls::Error),
    #[error("serving failed")]
    Io(#[from] std::io::Error),
}

/// PEM files of the server's certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read_pem(path: &Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::Read {
        path: path.to_owned(),
        source,
    })
}

fn tls_config(files: &TlsFiles) -> Result<rustls::ServerConfig, ServeError> {
    // One crypto provider for the process, chosen here rather than by feature unification.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = rustls_pemfile::certs(&mut read_pem(&files.cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ServeError::Read {
            path: files.cert.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(ServeError::Pem {
            path: files.cert.clone(),
        });
    }
    let key = rustls_pemfile::private_key(&mut read_pem(&files.key)?.as_slice())
        .map_err(|source| ServeError::Read {
            path: files.key.clone(),
            source,
        })?
        .ok_or_else(|| ServeError::Pem {
            path: files.key.clone(),
        })?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts connections until `shutdown` completes; each connection runs on its own task.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let acceptor = match &tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(
            files,
        )?))),
        None => None,
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of descriptors or a reset during accept: keep serving the others.
                Err(_) => continue,
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}
