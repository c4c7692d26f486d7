//! The -ENOSYS stub runc prepends to restrictive seccomp filters (runc's patchbpf): a
//! syscall numbered above every syscall the profile names, for its architecture, gets
//! ENOSYS instead of the default action, so programs fall back from syscalls newer than
//! the profile (glibc's clone3, faccessat2, ...) instead of failing with EPERM.

use std::collections::BTreeMap;

use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction};

use super::{arch, ARCHES};

/// Set in the syscall number by x32 processes (on the x86_64 audit architecture).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// AUDIT_ARCH_X86_64; x32 shares it (SCMP_ARCH_X32 is libseccomp's own token).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Offsets in struct seccomp_data.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Target {
    Section(usize),
    Enosys,
    Filter,
}

enum Item {
    Insn(libc::sock_filter),
    Ja(Target),
    Label(Target),
}

fn stmt(code: u32, k: u32) -> Item {
    jump(code, k, 0, 0)
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> Item {
    Item::Insn(libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    })
}

fn load(offset: u32) -> Item {
    stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

/// `if nr > max goto ENOSYS else goto filter`, three instructions.
fn above_is_enosys(max: u32) -> [Item; 3] {
    [
        jump(libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K, max, 0, 1),
        Item::Ja(Target::Enosys),
        Item::Ja(Target::Filter),
    ]
}

/// Whether runc would add the stub: not for permissive default actions (a tracer or the
/// log action handles new syscalls itself) nor when the default already returns ENOSYS.
fn wanted(s: &LinuxSeccomp) -> bool {
    use LinuxSeccompAction::*;
    let permissive = matches!(s.default_action(), ScmpActAllow | ScmpActLog | ScmpActTrace);
    let already_enosys = s.default_errno_ret() == Some(libc::ENOSYS as u32);
    !permissive && !already_enosys
}

/// The highest number, on `a`, of any syscall the profile names (whatever its action).
fn last_syscall(s: &LinuxSeccomp, a: ScmpArch) -> Option<u32> {
    s.syscalls()
        .iter()
        .flatten()
        .flat_map(|c| c.names())
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n, a).ok())
        .filter_map(|nr| u32::try_from(nr.as_raw_syscall()).ok())
        .max()
}

/// For each audit architecture of the filter (the configured ones plus the native one, as
/// runc), the last syscall per mode: `(is_x32, max)`.
fn last_syscalls(s: &LinuxSeccomp) -> BTreeMap<u32, Vec<(bool, u32)>> {
    let native = ScmpArch::native();
    let mut arches: Vec<Arch> = s
        .architectures()
        .iter()
        .flatten()
        .copied()
        .filter(|a| *a != Arch::ScmpArchNative)
        .collect();
    if let Some(n) = ARCHES
        .iter()
        .find(|a| **a != Arch::ScmpArchNative && arch(**a) == native)
    {
        arches.push(*n);
    }
    arches.sort_by_key(|a| *a as u32);
    arches.dedup();
    let mut out: BTreeMap<u32, Vec<(bool, u32)>> = BTreeMap::new();
    for a in arches {
        let Some(max) = last_syscall(s, arch(a)) else {
            continue;
        };
        let is_x32 = a == Arch::ScmpArchX32;
        let audit = if is_x32 { AUDIT_ARCH_X86_64 } else { a as u32 };
        out.entry(audit).or_default().push((is_x32, max));
    }
    out
}

fn section(items: &mut Vec<Item>, audit: u32, modes: &[(bool, u32)]) {
    items.push(load(DATA_NR));
    let max_of = |x32: bool| modes.iter().find(|m| m.0 == x32).map(|m| m.1);
    if audit == AUDIT_ARCH_X86_64 {
        let block = |max: Option<u32>| -> Vec<Item> {
            match max {
                Some(m) => above_is_enosys(m).into(),
                None => vec![Item::Ja(Target::Filter)],
            }
        };
        let x32 = block(max_of(true));
        let x86_64 = block(max_of(false));
        // x32 numbers carry X32_SYSCALL_BIT: test it, then the block for that mode.
        items.push(jump(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            X32_SYSCALL_BIT,
            0,
            x32.len() as u8,
        ));
        items.extend(x32);
        items.extend(x86_64);
        return;
    }
    if matches!(audit, 0x0000_0016 | 0x8000_0016) {
        // s390(x) multiplexes unknown large numbers through syscall 0 (setup): ENOSYS.
        items.push(jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 0, 1));
        items.push(Item::Ja(Target::Enosys));
    }
    match max_of(false) {
        Some(m) => items.extend(above_is_enosys(m)),
        None => items.push(Item::Ja(Target::Filter)),
    }
}

/// The stub to put before libseccomp's program, or nothing when runc would not add one.
pub(super) fn stub(s: &LinuxSeccomp) -> Vec<libc::sock_filter> {
    if !wanted(s) {
        return Vec::new();
    }
    let per_arch = last_syscalls(s);
    if per_arch.is_empty() {
        return Vec::new();
    }
    let mut items = vec![load(DATA_ARCH)];
    for (i, audit) in per_arch.keys().enumerate() {
        items.push(jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            *audit,
            0,
            1,
        ));
        items.push(Item::Ja(Target::Section(i)));
    }
    items.push(Item::Ja(Target::Filter));
    for (i, (audit, modes)) in per_arch.iter().enumerate() {
        items.push(Item::Label(Target::Section(i)));
        section(&mut items, *audit, modes);
    }
    items.push(Item::Label(Target::Enosys));
    items.push(stmt(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    ));
    items.push(Item::Label(Target::Filter));
    assemble(items)
}

/// Resolves labels: `ja` offsets count from the next instruction.
fn assemble(items: Vec<Item>) -> Vec<libc::sock_filter> {
    let mut labels = BTreeMap::new();
    let mut pc = 0u32;
    for item in &items {
        match item {
            Item::Label(t) => {
                labels.insert(*t, pc);
            }
            _ => pc += 1,
        }
    }
    let mut out = Vec::with_capacity(pc as usize);
    for item in items {
        match item {
            Item::Label(_) => {}
            Item::Insn(i) => out.push(i),
            Item::Ja(t) => {
                let here = out.len() as u32;
                let to = labels.get(&t).copied().unwrap_or(here + 1);
                out.push(libc::sock_filter {
                    code: (libc::BPF_JMP | libc::BPF_JA) as u16,
                    jt: 0,
                    jf: 0,
                    k: to - here - 1,
                });
            }
        }
    }
    out
}
