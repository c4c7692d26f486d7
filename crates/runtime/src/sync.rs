//! The sync socket between `create` and the container's init: a SOCK_SEQPACKET pair
//! (one message per send, EOF when the peer exits or execs) carrying the setup steps and
//! readable errors from the child.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::syscall::cvt;

/// One step of the create handshake.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// parent → child: id maps written and cgroup joined; go on with setup.
    Go,
    /// child → parent: mounts are done, run prestart and createRuntime hooks now.
    Hooks,
    /// parent → child: hooks finished; carries the state JSON for the container's hooks.
    HooksDone(String),
    /// child → parent: setup complete, waiting on the exec fifo (or for `Start`).
    Ready,
    /// parent → child: `run` releases the init without an exec fifo: run the
    /// startContainer hooks and exec. Its answer is EOF (exec'd) or an `Error`.
    Start,
    /// child → parent: setup failed; the text is shown to the user as is.
    Error(String),
}

const MAX: usize = 64 * 1024;

impl Message {
    fn encode(&self) -> Vec<u8> {
        match self {
            Message::Go => b"g".to_vec(),
            Message::Hooks => b"h".to_vec(),
            Message::HooksDone(state) => {
                let mut v = b"d".to_vec();
                v.extend_from_slice(state.as_bytes());
                v
            }
            Message::Ready => b"r".to_vec(),
            Message::Start => b"s".to_vec(),
            Message::Error(text) => {
                let mut v = b"e".to_vec();
                v.extend_from_slice(text.as_bytes());
                v.truncate(MAX);
                v
            }
        }
    }

    fn decode(bytes: &[u8]) -> io::Result<Message> {
        match bytes.split_first() {
            Some((b'g', _)) => Ok(Message::Go),
            Some((b'h', _)) => Ok(Message::Hooks),
            Some((b'd', state)) => Ok(Message::HooksDone(
                String::from_utf8_lossy(state).into_owned(),
            )),
            Some((b'r', _)) => Ok(Message::Ready),
            Some((b's', _)) => Ok(Message::Start),
            Some((b'e', text)) => Ok(Message::Error(String::from_utf8_lossy(text).into_owned())),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected message on the sync socket",
            )),
        }
    }
}

/// One end of the sync socket.
#[derive(Debug)]
pub struct SyncSocket {
    fd: OwnedFd,
}

impl SyncSocket {
    /// A connected close-on-exec pair: (parent end, child end).
    pub fn pair() -> io::Result<(SyncSocket, SyncSocket)> {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        cvt(unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        })?;
        // SAFETY: socketpair returned two fresh fds that nothing else owns.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((SyncSocket { fd: a }, SyncSocket { fd: b }))
    }

    pub fn send(&self, msg: &Message) -> io::Result<()> {
        let bytes = msg.encode();
        loop {
            // SAFETY: bytes is a valid buffer of the given length.
            let n = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(err);
            }
        }
    }

    /// The next message, or None at EOF (the peer exited or exec'd).
    pub fn recv(&self) -> io::Result<Option<Message>> {
        self.recv_with(0)
    }

    /// A message the peer already sent, without waiting: `Ok(None)` at EOF, an error of
    /// kind `WouldBlock` when the peer is alive and sent nothing.
    pub fn try_recv(&self) -> io::Result<Option<Message>> {
        self.recv_with(libc::MSG_DONTWAIT)
    }

    fn recv_with(&self, flags: libc::c_int) -> io::Result<Option<Message>> {
        let mut buf = vec![0u8; MAX];
        loop {
            // SAFETY: buf is a valid writable buffer of the given length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags,
                )
            };
            if n > 0 {
                return Message::decode(&buf[..n as usize]).map(Some);
            }
            if n == 0 {
                return Ok(None);
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_eof_after_peer_closes() {
        let (a, b) = SyncSocket::pair().expect("pair");
        a.send(&Message::Go).expect("send");
        a.send(&Message::Error("exec: \"x\": not found".into()))
            .expect("send");
        assert_eq!(b.recv().expect("recv"), Some(Message::Go));
        assert_eq!(
            b.recv().expect("recv"),
            Some(Message::Error("exec: \"x\": not found".into()))
        );
        drop(a);
        assert_eq!(b.recv().expect("recv"), None);
    }

    #[test]
    fn try_recv_would_block_until_sent_and_keeps_messages_after_the_peer_exits() {
        let (a, b) = SyncSocket::pair().expect("pair");
        let err = b.try_recv().expect_err("nothing sent yet");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        a.send(&Message::Start).expect("send");
        assert_eq!(b.try_recv().expect("recv"), Some(Message::Start));
        // An init that failed after `Start` sends its error and exits: the error is still
        // there to read once its parent reaped it.
        b.send(&Message::Error(
            "error running startContainer hook: x".into(),
        ))
        .expect("send");
        drop(b);
        assert_eq!(
            a.try_recv().expect("recv"),
            Some(Message::Error(
                "error running startContainer hook: x".into()
            ))
        );
        assert_eq!(a.try_recv().expect("recv"), None);
    }
}
