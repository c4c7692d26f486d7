//! Compiled filters kept under the runtime root (`<root>/@seccomp/<key>`, `@` is never in
//! a container id): libseccomp takes ~10 ms to compile and export Docker's default profile,
//! a third of a container's create, for the same few profiles every time. The key covers
//! everything the program depends on: the profile's JSON, the libseccomp version, the
//! kernel release (the flags probed) and this binary (size and mtime, so a rebuilt runtime
//! never reads an older build's entry). An entry that cannot be read or does not parse is
//! compiled again and replaced; writes are atomic (temp file, rename), never fsynced (the
//! root is on /run, and a lost entry is only compiled again).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

use super::{Filter, SeccompError};

/// The cache directory's name under the runtime root.
pub const DIR: &str = "@seccomp";

/// Entries kept before the directory is emptied (profiles differ by capability set and
/// by user profiles; a few dozen is plenty).
const MAX_ENTRIES: usize = 64;

/// BPF programs are at most 4096 instructions (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

impl Filter {
    /// [`Filter::compile`] through the cache under `root`: a hit skips libseccomp. Errors
    /// of the cache itself are never errors of the create: the filter is compiled instead.
    pub fn compile_cached(s: &LinuxSeccomp, root: &Path) -> Result<Filter, SeccompError> {
        let Some(path) = entry_path(s, root) else {
            return Filter::compile(s);
        };
        if let Some(filter) = std::fs::read(&path).ok().and_then(|b| decode(&b)) {
            return Ok(filter);
        }
        let filter = Filter::compile(s)?;
        store(&path, &encode(&filter));
        Ok(filter)
    }
}

fn entry_path(s: &LinuxSeccomp, root: &Path) -> Option<PathBuf> {
    let profile = serde_json::to_vec(s).ok()?;
    let exe = std::fs::metadata("/proc/self/exe").ok()?;
    let version = libseccomp::ScmpVersion::current().ok()?;
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let mut key = format!(
        "v1\0{}.{}.{}\0{release}\0{}\0{}.{}\0",
        version.major,
        version.minor,
        version.micro,
        exe.size(),
        exe.mtime(),
        exe.mtime_nsec()
    )
    .into_bytes();
    key.extend_from_slice(&profile);
    let digest = berth_oci::Digest::sha256_of(&key);
    Some(root.join(DIR).join(digest.hex()))
}

/// `<flags> <notify 0|1> <ignored names, space separated>\n` then the program's bytes.
fn encode(filter: &Filter) -> Vec<u8> {
    let mut out = format!(
        "{} {} {}\n",
        filter.flags,
        u8::from(filter.notify),
        filter.ignored_syscalls.join(" ")
    )
    .into_bytes();
    for insn in &filter.program {
        out.extend_from_slice(&insn.code.to_ne_bytes());
        out.push(insn.jt);
        out.push(insn.jf);
        out.extend_from_slice(&insn.k.to_ne_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Filter> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..newline]).ok()?;
    let program = &bytes[newline + 1..];
    if program.is_empty() || program.len() % 8 != 0 || program.len() / 8 > MAX_INSNS {
        return None;
    }
    let mut fields = header.splitn(3, ' ');
    let flags = fields.next()?.parse().ok()?;
    let notify = match fields.next()? {
        "0" => false,
        "1" => true,
        _ => return None,
    };
    let ignored_syscalls = fields
        .next()?
        .split(' ')
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    let program = super::program_from_bytes(program);
    Some(Filter {
        program,
        flags,
        notify,
        ignored_syscalls,
    })
}

fn store(path: &Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else {
        return;
    };
    if std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .is_err()
    {
        return;
    }
    if std::fs::read_dir(dir).is_ok_and(|d| d.count() >= MAX_ENTRIES) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
    if written.is_err() || std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> LinuxSeccomp {
        serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"names":["read","write","exit_group","no_such_call"],
                "action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .expect("profile")
    }

    fn same(a: &Filter, b: &Filter) -> bool {
        a.flags == b.flags
            && a.notify == b.notify
            && a.ignored_syscalls == b.ignored_syscalls
            && a.program.len() == b.program.len()
            && a.program
                .iter()
                .zip(&b.program)
                .all(|(x, y)| x.code == y.code && x.jt == y.jt && x.jf == y.jf && x.k == y.k)
    }

    #[test]
    fn a_cached_filter_is_the_compiled_one_and_a_bad_entry_is_compiled_again() {
        let root = tempfile::tempdir().expect("tempdir");
        let fresh = Filter::compile(&profile()).expect("compile");
        let first = Filter::compile_cached(&profile(), root.path()).expect("first");
        assert!(same(&fresh, &first));
        let entries: Vec<_> = std::fs::read_dir(root.path().join(DIR))
            .expect("cache dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let second = Filter::compile_cached(&profile(), root.path()).expect("second");
        assert!(same(&fresh, &second));
        assert_eq!(second.ignored_syscalls(), ["no_such_call"]);
        // A truncated or garbled entry is never loaded: the filter is compiled again.
        for bad in [
            &b"0 0 \n\x01\x02\x03"[..],
            b"",
            b"x y\n12345678",
            b"0 2 \n12345678",
        ] {
            std::fs::write(&entries[0], bad).expect("write");
            let again = Filter::compile_cached(&profile(), root.path()).expect("again");
            assert!(same(&fresh, &again));
        }
        assert!(same(
            &fresh,
            &decode(&std::fs::read(&entries[0]).unwrap()).unwrap()
        ));
    }

    #[test]
    fn different_profiles_get_different_entries() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut other = profile();
        other.set_default_action(oci_spec::runtime::LinuxSeccompAction::ScmpActKill);
        let a = Filter::compile_cached(&profile(), root.path()).expect("a");
        let b = Filter::compile_cached(&other, root.path()).expect("b");
        assert!(!same(&a, &b));
        assert_eq!(std::fs::read_dir(root.path().join(DIR)).unwrap().count(), 2);
        assert!(same(&b, &Filter::compile(&other).unwrap()));
    }

    #[test]
    fn the_cache_directory_is_no_container_id() {
        assert!(crate::container::validate_id(DIR).is_err());
    }
}
