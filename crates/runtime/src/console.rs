//! The container's terminal: a pty opened inside the container's devpts, its master sent
//! to the caller over --console-socket (SCM_RIGHTS, as runc does), its slave made the
//! process's stdio and controlling terminal.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::syscall::{self, cvt};

/// Connects to the console socket (done by the parent, before the clone).
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let stream = UnixStream::connect(path)?;
    Ok(OwnedFd::from(stream))
}

/// A new pty from /dev/ptmx: (master, slave, slave path).
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd, String)> {
    let master = syscall::open(Path::new("/dev/ptmx"), libc::O_RDWR | libc::O_NOCTTY, 0)?;
    let mut unlock: libc::c_int = 0;
    let mut number: libc::c_uint = 0;
    // SAFETY: ioctls on a valid pty master with pointers to valid ints.
    unsafe {
        cvt(libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCSPTLCK,
            &mut unlock,
        ))?;
        cvt(libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number))?;
    }
    // TIOCGPTPEER opens the slave through the master, immune to /dev/pts tricks.
    // SAFETY: ioctl returning a new fd we then own.
    let slave = cvt(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh fd from the kernel.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    Ok((master, slave, format!("/dev/pts/{number}")))
}

/// Sets the window size of a pty (process.consoleSize); failures are harmless.
pub fn set_size(master: BorrowedFd<'_>, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ioctl with a valid winsize.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// Sends `fd` over the connected unix socket `socket` with `name` as the payload.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let raw: RawFd = fd.as_raw_fd();
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: name.as_ptr() as *mut libc::c_void,
        iov_len: name.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at a buffer of CMSG_SPACE(int) bytes, so the first header
    // and its data fit; we write exactly one fd.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut RawFd, raw);
        cvt(libc::sendmsg(socket.as_raw_fd(), &msg, 0) as libc::c_int)?;
    }
    Ok(())
}

/// Makes `slave` the calling process's stdin/stdout/stderr and controlling terminal
/// (after setsid).
pub fn make_controlling(slave: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscalls on valid fds.
    unsafe {
        cvt(libc::setsid())?;
        for target in 0..3 {
            cvt(libc::dup2(slave.as_raw_fd(), target))?;
        }
        cvt(libc::ioctl(0, libc::TIOCSCTTY, 0))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn send_fd_passes_a_working_descriptor_and_the_name() {
        let (a, b) = UnixStream::pair().expect("pair");
        let file = tempfile::tempfile().expect("file");
        send_fd(a.as_fd(), file.as_fd(), "/dev/pts/7").expect("send");
        let mut buf = [0u8; 32];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u8; 64];
        // SAFETY: test-only recvmsg into local buffers.
        let (n, fd) = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = control.len() as _;
            let n = libc::recvmsg(b.as_raw_fd(), &mut msg, 0);
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            assert!(!cmsg.is_null());
            (
                n,
                std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const RawFd),
            )
        };
        assert_eq!(&buf[..n as usize], b"/dev/pts/7");
        assert!(fd >= 0);
        // The received fd is a real, separate descriptor for the same file.
        assert_ne!(fd, file.as_raw_fd());
        // SAFETY: we own the received fd.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}
