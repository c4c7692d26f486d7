//! Pinned network namespaces: created and entered on dedicated std threads, never on the
//! caller's thread (which may be a tokio worker) and never by forking.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::mount::UnmountFlags;
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

/// `statfs` magic of nsfs, the filesystem of `/proc/<pid>/ns/*` and their bind mounts.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Errors of network namespace handling.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot create the directory of network namespace {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("a network namespace is already pinned at {0}")]
    AlreadyExists(PathBuf),
    #[error("cannot create network namespace {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open network namespace {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0} is not a network namespace")]
    NotNetns(PathBuf),
    #[error("cannot enter network namespace {path}")]
    Enter {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove network namespace {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start a thread for network namespace {path}")]
    Thread {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the thread working in network namespace {0} panicked")]
    Panicked(PathBuf),
}

/// A network namespace pinned by a bind mount of its nsfs file at `path`.
///
/// No file descriptor is kept open: once [`NetNs::remove`] unmounts the path, nothing of
/// berth keeps the namespace (and the veths inside it) alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNs {
    path: PathBuf,
}

impl NetNs {
    /// New network namespace pinned at `path` (parent dir created), with `lo` up.
    ///
    /// A dedicated std thread does `unshare(CLONE_NEWNET)` (which only moves that thread) and
    /// bind-mounts `/proc/thread-self/ns/net` on `path`, as `ip netns add` does. A leftover
    /// empty file at `path` (a crash between create and mount) is reused.
    pub fn create(path: &Path) -> Result<NetNs, NetnsError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| NetnsError::CreateDir {
                path: path.to_path_buf(),
                source,
            })?;
        }
        if is_netns(path) {
            return Err(NetnsError::AlreadyExists(path.to_path_buf()));
        }
        let create_err = |source| NetnsError::Create {
            path: path.to_path_buf(),
            source,
        };
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(create_err)?;
        let target = path.to_path_buf();
        // One thread does it all: it is inside the new namespace once it has unshared, so
        // `lo` goes up from there too (no second thread entering it).
        let pinned = on_thread(path, move || -> io::Result<()> {
            // SAFETY: only CLONE_NEWNET is unshared, and only by this short-lived thread; it
            // shares no file descriptor table change with other threads.
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }?;
            rustix::mount::mount_bind("/proc/thread-self/ns/net", &target)?;
            crate::netlink::block_on(|handle| async move {
                crate::netlink::link_up(&handle, "lo").await
            })
            .map_err(|err| io::Error::other(err.to_string()))
        })?;
        match pinned {
            Ok(()) => Ok(NetNs {
                path: path.to_path_buf(),
            }),
            Err(source) => {
                // Unmounts the pin if it was made, and unlinks the file.
                let _ = NetNs::remove(path);
                Err(create_err(source))
            }
        }
    }

    /// A namespace already pinned at `path` (checked to be an nsfs file).
    pub fn open(path: &Path) -> Result<NetNs, NetnsError> {
        open_ns_file(path)?;
        Ok(NetNs {
            path: path.to_path_buf(),
        })
    }

    /// Where the namespace is pinned (what the OCI spec's network namespace path names).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the pinned file, e.g. for `IFLA_NET_NS_FD`.
    pub fn file(&self) -> Result<File, NetnsError> {
        open_ns_file(&self.path)
    }

    /// Runs `f` on a fresh std thread that has `setns()`'d into this namespace.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NetnsError> {
        let file = open_ns_file(&self.path)?;
        let path = self.path.clone();
        let entered = on_thread(&self.path, move || {
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(LinkNameSpaceType::Network),
            )
            .map_err(|err| NetnsError::Enter {
                path,
                source: err.into(),
            })?;
            drop(file);
            Ok(f())
        })?;
        entered
    }

    /// Unmounts and unlinks the pinned file; Ok if already gone.
    pub fn remove(path: &Path) -> Result<(), NetnsError> {
        let remove_err = |source| NetnsError::Remove {
            path: path.to_path_buf(),
            source,
        };
        match rustix::mount::unmount(path, UnmountFlags::DETACH) {
            Ok(()) => {}
            // EINVAL: not a mount point (already unmounted, or a leftover empty file).
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
            Err(err) => return Err(remove_err(err.into())),
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(remove_err(err)),
        }
    }
}

fn is_netns(path: &Path) -> bool {
    open_ns_file(path).is_ok()
}

fn open_ns_file(path: &Path) -> Result<File, NetnsError> {
    let file = File::open(path).map_err(|source| NetnsError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let stat = rustix::fs::fstatfs(&file).map_err(|err| NetnsError::Open {
        path: path.to_path_buf(),
        source: err.into(),
    })?;
    #[allow(clippy::unnecessary_cast)]
    if stat.f_type as i64 != NSFS_MAGIC {
        return Err(NetnsError::NotNetns(path.to_path_buf()));
    }
    Ok(file)
}

/// Runs `f` on a new named std thread and waits for it.
fn on_thread<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NetnsError> {
    let handle = std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(f)
        .map_err(|source| NetnsError::Thread {
            path: path.to_path_buf(),
            source,
        })?;
    handle
        .join()
        .map_err(|_| NetnsError::Panicked(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_refuses_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plain");
        std::fs::write(&path, b"").expect("write");
        assert!(matches!(NetNs::open(&path), Err(NetnsError::NotNetns(_))));
    }

    #[test]
    fn open_of_a_missing_path_is_an_open_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = NetNs::open(&dir.path().join("missing")).expect_err("missing");
        assert!(matches!(err, NetnsError::Open { .. }));
    }

    #[test]
    fn remove_of_a_missing_path_is_ok() {
        let dir = tempfile::tempdir().expect("tempdir");
        NetNs::remove(&dir.path().join("missing")).expect("remove missing");
    }

    #[test]
    fn remove_unlinks_a_leftover_unmounted_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("leftover");
        std::fs::write(&path, b"").expect("write");
        NetNs::remove(&path).expect("remove");
        assert!(!path.exists());
    }

    #[test]
    fn open_accepts_an_nsfs_file() {
        let ns = NetNs::open(Path::new("/proc/self/ns/net")).expect("own netns");
        assert_eq!(ns.path(), Path::new("/proc/self/ns/net"));
    }
}
