//! A terminal for foreground `run`/`exec` without --console-socket, as runc gives one:
//! berth-runtime receives the pty master itself and copies between it and its own stdio
//! (stdin in raw mode while the container runs).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// A listening console socket in the state root, removed on drop.
pub struct ConsoleListener {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleListener {
    pub fn new(root: &Path, id: &str) -> std::io::Result<ConsoleListener> {
        std::fs::create_dir_all(root)?;
        let path = root.join(format!(".{id}-console-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        Ok(ConsoleListener { path, listener })
    }

    /// Accepts the init's connection and takes the pty master it sent.
    pub fn receive_master(&self) -> std::io::Result<OwnedFd> {
        let (stream, _) = self.listener.accept()?;
        recv_fd(stream.as_raw_fd())
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn recv_fd(socket: RawFd) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u8; 64];
    // SAFETY: recvmsg into local buffers; the control header is checked before use.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len() as _;
        if libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(std::io::Error::other(
                "no pty master received on the console socket",
            ));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const RawFd);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Copies the window size of our stdin (when a terminal) to the pty.
pub fn copy_window_size(master: BorrowedFd<'_>) {
    // SAFETY: ioctls with a valid winsize buffer; failures are harmless.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// The running copy between our stdio and the pty.
pub struct Proxy {
    output: JoinHandle<()>,
    saved: Option<libc::termios>,
}

/// Starts copying stdin → master and master → stdout (raw stdin when it is a terminal).
pub fn start_proxy(master: OwnedFd) -> std::io::Result<Proxy> {
    copy_window_size(std::os::fd::AsFd::as_fd(&master));
    // SAFETY: termios calls on fd 0 with a local buffer.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::isatty(0) == 1 && libc::tcgetattr(0, &mut t) == 0 {
            let mut raw = t;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(0, libc::TCSANOW, &raw);
            Some(t)
        } else {
            None
        }
    };
    let input = master.try_clone()?;
    std::thread::spawn(move || {
        let mut to = std::fs::File::from(input);
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let output = std::thread::spawn(move || {
        let mut from = std::fs::File::from(master);
        let mut buf = [0u8; 4096];
        let mut stdout = std::io::stdout();
        // EIO once every slave fd is closed: the container is gone.
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                break;
            }
            let _ = stdout.flush();
        }
    });
    Ok(Proxy { output, saved })
}

impl Proxy {
    /// Waits for the last output and restores the terminal.
    pub fn finish(self) {
        let _ = self.output.join();
        if let Some(t) = self.saved {
            // SAFETY: restoring the attributes read at start.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}
