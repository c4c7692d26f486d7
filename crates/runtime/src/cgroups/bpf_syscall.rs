//! Loading the v2 device filter and attaching it to a cgroup with the bpf(2) syscall.
//!
//! Like runc: the new program is attached with BPF_F_ALLOW_MULTI before the programs that
//! were attached earlier (a previous `set`) are detached, so there is no window without a
//! filter.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::bpf_program::{encode, Insn};
use super::CgroupError;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// union bpf_attr, zeroed beyond the fields each command uses (the kernel checks that).
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn put_u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn put_u64(&mut self, at: usize, v: u64) {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }
    fn u32_at(&self, at: usize) -> u32 {
        let mut b = [0; 4];
        b.copy_from_slice(&self.0[at..at + 4]);
        u32::from_ne_bytes(b)
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: attr is a valid, writable buffer of the size passed; every pointer stored in
    // it (instructions, license, id array) outlives the call, as the callers guarantee.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn to_fd(r: libc::c_long) -> io::Result<OwnedFd> {
    let fd = i32::try_from(r).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this new file descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn err(op: &'static str, source: io::Error) -> CgroupError {
    CgroupError::DeviceFilter { op, source }
}

fn load(prog: &[Insn]) -> Result<OwnedFd, CgroupError> {
    let code = encode(prog);
    let license = b"Apache\0";
    let mut attr = Attr::new();
    attr.put_u32(0, BPF_PROG_TYPE_CGROUP_DEVICE);
    attr.put_u32(4, prog.len() as u32);
    attr.put_u64(8, code.as_ptr() as u64);
    attr.put_u64(16, license.as_ptr() as u64);
    attr.put_u32(68, BPF_CGROUP_DEVICE); // expected_attach_type
    bpf(BPF_PROG_LOAD, &mut attr)
        .and_then(to_fd)
        .map_err(|e| err("load", e))
}

/// Ids of the device programs attached to the cgroup now.
fn attached(cgroup: &File) -> Result<Vec<u32>, CgroupError> {
    let mut ids = vec![0u32; 64];
    let mut attr = Attr::new();
    attr.put_u32(0, cgroup.as_raw_fd() as u32);
    attr.put_u32(4, BPF_CGROUP_DEVICE);
    attr.put_u64(16, ids.as_mut_ptr() as u64);
    attr.put_u32(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|e| err("query", e))?;
    let count = attr.u32_at(24) as usize;
    ids.truncate(count.min(64));
    Ok(ids)
}

fn attach_fd(cgroup: &File, prog: &OwnedFd, cmd: libc::c_long, flags: u32) -> io::Result<()> {
    let mut attr = Attr::new();
    attr.put_u32(0, cgroup.as_raw_fd() as u32);
    attr.put_u32(4, prog.as_raw_fd() as u32);
    attr.put_u32(8, BPF_CGROUP_DEVICE);
    attr.put_u32(12, flags);
    bpf(cmd, &mut attr).map(|_| ())
}

/// Replaces the device filter of the cgroup at `dir` with `prog`.
pub(crate) fn install(dir: &Path, prog: &[Insn]) -> Result<(), CgroupError> {
    let cgroup = File::open(dir).map_err(|source| CgroupError::io("open", dir, source))?;
    let old = attached(&cgroup)?;
    let new = load(prog)?;
    attach_fd(&cgroup, &new, BPF_PROG_ATTACH, BPF_F_ALLOW_MULTI).map_err(|e| err("attach", e))?;
    for id in old {
        let mut attr = Attr::new();
        attr.put_u32(0, id);
        let fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).and_then(to_fd) {
            Ok(fd) => fd,
            // Detached meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(err("look up", e)),
        };
        attach_fd(&cgroup, &fd, BPF_PROG_DETACH, 0).map_err(|e| err("detach", e))?;
    }
    Ok(())
}
