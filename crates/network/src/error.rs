//! `NetError`, the error of bridge, firewall and DNS operations, with a kind for the engine.

use std::io;
use std::path::PathBuf;

use crate::netns::NetnsError;

/// What kind of failure a [`NetError`] is, so the engine can map it to its own kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetErrorKind {
    /// A caller-supplied value (name, address) is unusable.
    InvalidArgument,
    /// A device or namespace the operation needs does not exist.
    NotFound,
    /// The host lacks something berth needs (the `nft` binary, a sysctl).
    Unavailable,
    /// The kernel or a tool refused an otherwise valid request.
    Internal,
}

/// Errors of bridge, veth, firewall and DNS operations.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("netlink request failed: {op}")]
    Netlink {
        op: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("cannot open a netlink socket")]
    Socket(#[source] io::Error),
    #[error("cannot start the netlink event loop")]
    Runtime(#[source] io::Error),
    #[error("cannot start a network thread")]
    Thread(#[source] io::Error),
    #[error("a network thread panicked")]
    Panicked,
    #[error("no such network interface: {0}")]
    NoSuchInterface(String),
    #[error("invalid interface name {0:?} (1 to 15 bytes, no '/', ':' or whitespace)")]
    InvalidInterfaceName(String),
    #[error("cannot write sysctl {path}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot run nft (is the nftables package installed?)")]
    NftSpawn(#[source] io::Error),
    #[error("nft refused berth's ruleset: {stderr}")]
    Nft { stderr: String },
    #[error("cannot bind the embedded dns server on {addr}")]
    DnsBind {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the embedded dns server must be started inside a tokio runtime")]
    NoRuntime,
}

impl NetError {
    /// The kind of this error.
    pub fn kind(&self) -> NetErrorKind {
        match self {
            NetError::InvalidInterfaceName(_) => NetErrorKind::InvalidArgument,
            NetError::NoSuchInterface(_) => NetErrorKind::NotFound,
            NetError::Netns(NetnsError::Open { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                NetErrorKind::NotFound
            }
            NetError::NftSpawn(_) => NetErrorKind::Unavailable,
            _ => NetErrorKind::Internal,
        }
    }
}
