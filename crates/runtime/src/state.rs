//! The container state directory `<root>/<id>/`: state.json (written atomically) with the
//! runtime-spec state plus what later commands need, the live status computed from
//! /proc, and runc's `state`/`list` output shapes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The runtime-spec version this runtime implements (reported as `ociVersion`).
pub const OCI_VERSION: &str = "1.2.0";
/// The fifo `create` leaves for `start` to open (runc's name).
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write state {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The runtime-spec status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Stopped,
    Paused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What berth-runtime keeps about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// Host pid of the container's init; 0 before it exists.
    pub init_pid: i32,
    /// Field 22 of /proc/<pid>/stat when init started: detects pid reuse.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC (Go's time.RFC3339Nano, as runc prints it).
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// linux.cgroupsPath as given in the spec (None: the runtime's default for the id).
    pub cgroups_path: Option<String>,
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// The full spec the container was created with (hooks, namespaces, process).
    pub config: oci_spec::runtime::Spec,
}

/// runc's `state` JSON (and each element of `list --format json`), field order included.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct StateJson {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
}

/// The runtime-spec state given to hooks on stdin (spec's state.md shape).
#[derive(Debug, Serialize)]
pub struct HookState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

impl ContainerState {
    pub fn dir(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    /// Reads `<root>/<id>/state.json`; `Ok(None)` when the container does not exist.
    pub fn load(root: &Path, id: &str) -> Result<Option<ContainerState>, StateError> {
        let path = Self::dir(root, id).join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                path,
                reason: e.to_string(),
            })
    }

    /// Writes state.json atomically (temp file, rename) into an existing dir. No fsync, as
    /// runc's saveState: the rename is atomic against a crash of any process, and the state
    /// (under /run) describes processes and cgroups that a power loss removes anyway. The
    /// fsync cost 2-8 ms per save on a disk-backed root, twice per `create`.
    ///
    /// An existing state.json is swapped with the new one (RENAME_EXCHANGE), then the old
    /// one is unlinked, rather than renamed over: on ext4 a rename over an existing file
    /// makes the kernel allocate the new file's blocks at once (auto_da_alloc), and with
    /// the `discard` mount option unlinking those blocks later waits for a synchronous
    /// discard. That cost 4-7 ms in every `run`'s delete on this machine's root fs; a
    /// file never renamed over is still unallocated when a short container is deleted.
    pub fn save(&self, root: &Path) -> Result<(), StateError> {
        let dir = Self::dir(root, &self.id);
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
        let write = || -> std::io::Result<()> {
            let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            drop(f);
            replace(&tmp, &path)
        };
        write().map_err(|source| StateError::Write { path, source })
    }

    /// The live status: stopped when init is gone, a zombie or a reused pid; created while
    /// the exec fifo exists; paused when the freezer says so (`frozen`).
    pub fn status(&self, root: &Path, frozen: impl FnOnce() -> bool) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if Self::dir(root, &self.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// True when the recorded init still runs (same start time, not a zombie).
    pub fn init_alive(&self) -> bool {
        if self.init_pid <= 0 {
            return false;
        }
        match proc_stat(self.init_pid) {
            Some(stat) => {
                stat.start_time == self.init_start_time && stat.state != 'Z' && stat.state != 'X'
            }
            None => false,
        }
    }

    /// runc's state JSON for this container with `status`.
    pub fn to_json(&self, status: Status, owner: String) -> StateJson {
        StateJson {
            oci_version: OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.init_pid
            },
            status: status.as_str().to_string(),
            bundle: self.bundle.display().to_string(),
            rootfs: self.rootfs.display().to_string(),
            created: self.created.clone(),
            annotations: self.annotations.clone(),
            owner,
        }
    }

    /// The state passed to hooks on stdin; `status` is a runtime-spec status name
    /// ("creating" during create, as runc reports it to prestart/createRuntime hooks).
    pub fn hook_state(&self, status: &str) -> Vec<u8> {
        let s = HookState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status,
            pid: (self.init_pid > 0 && status != "stopped").then_some(self.init_pid),
            bundle: self.bundle.display().to_string(),
            annotations: &self.annotations,
        };
        serde_json::to_vec(&s).unwrap_or_default()
    }
}

/// Moves `tmp` to `path` atomically: by exchange and unlink when `path` exists (see
/// [`ContainerState::save`]), by rename when it does not or the filesystem cannot
/// exchange.
fn replace(tmp: &Path, path: &Path) -> std::io::Result<()> {
    let (from, to) = (
        crate::syscall::cstring(tmp)?,
        crate::syscall::cstring(path)?,
    );
    // SAFETY: two valid C strings; AT_FDCWD resolves them as plain paths.
    let swapped = crate::syscall::cvt(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    });
    match swapped {
        // `tmp` now holds the previous state.
        Ok(_) => std::fs::remove_file(tmp),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::EINVAL | libc::ENOSYS)
            ) =>
        {
            std::fs::rename(tmp, path)
        }
        Err(e) => Err(e),
    }
}

/// The fields of /proc/<pid>/stat the runtime uses.
#[derive(Debug, PartialEq)]
pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

/// Reads /proc/<pid>/stat; None when the process does not exist.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat(&text)
}

/// Parses a /proc/<pid>/stat line; the command name may contain spaces and parentheses,
/// so fields are counted from the last ')'.
pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); starttime is field 22.
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// Go's time.RFC3339Nano in UTC for a duration since the Unix epoch (trailing zeros
/// of the fraction trimmed, as Go does).
pub fn rfc3339_nano(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs() as i64;
    let nanos = since_epoch.subsec_nanos();
    let (y, mo, d, h, mi, s) = civil(secs);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Go's time.RFC3339 in UTC (seconds), used in log lines.
pub fn rfc3339(since_epoch: std::time::Duration) -> String {
    rfc3339_nano(std::time::Duration::from_secs(since_epoch.as_secs()))
}

/// Unix seconds to (year, month, day, hour, minute, second), proleptic Gregorian, UTC.
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// The user name owning `path` (from /etc/passwd), or the numeric uid; runc's `list` OWNER.
pub fn owner_name(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return String::new();
    };
    let uid = meta.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id: u32 = f.nth(1)?.parse().ok()?;
            (id == uid).then(|| name.to_string())
        })
        .next()
        .unwrap_or_else(|| format!("#{uid}"))
}

/// runc's `list` table (Go tabwriter: minwidth 12, padding 3, space padded).
pub fn list_table(rows: &[StateJson]) -> String {
    let mut lines = vec![[
        "ID".to_string(),
        "PID".into(),
        "STATUS".into(),
        "BUNDLE".into(),
        "CREATED".into(),
        "OWNER".into(),
    ]];
    for r in rows {
        lines.push([
            r.id.clone(),
            r.pid.to_string(),
            r.status.clone(),
            r.bundle.clone(),
            r.created.clone(),
            r.owner.clone(),
        ]);
    }
    let mut widths = [0usize; 5];
    for l in &lines {
        for (i, w) in widths.iter_mut().enumerate() {
            *w = (*w).max(l[i].chars().count() + 3).max(12);
        }
    }
    let mut out = String::new();
    for l in &lines {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}", l[i], w = w));
        }
        out.push_str(&l[5]);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_nano_trims_trailing_zeros_like_go() {
        assert_eq!(
            rfc3339_nano(Duration::new(1_796_272_581, 817_094_816)),
            "2026-12-03T04:36:21.817094816Z"
        );
        assert_eq!(
            rfc3339_nano(Duration::new(0, 500_000_000)),
            "1970-01-01T00:00:00.5Z"
        );
        assert_eq!(
            rfc3339_nano(Duration::new(951_782_400, 0)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(rfc3339(Duration::new(86_399, 7)), "1970-01-01T23:59:59Z");
    }

    #[test]
    fn proc_stat_parses_names_with_spaces_and_parens() {
        let line = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        let stat = parse_proc_stat(line).expect("parses");
        assert_eq!(
            stat,
            ProcStat {
                state: 'S',
                start_time: 98765
            }
        );
        assert!(parse_proc_stat("garbage").is_none());
    }

    fn sample() -> ContainerState {
        ContainerState {
            id: "x".into(),
            init_pid: 7638,
            init_start_time: 1,
            bundle: "/tmp/rb/b".into(),
            rootfs: "/tmp/rb/b/rootfs".into(),
            created: "2026-11-30T04:36:21.817094816Z".into(),
            annotations: BTreeMap::new(),
            cgroups_path: None,
            systemd_cgroup: false,
            config: oci_spec::runtime::Spec::default(),
        }
    }

    #[test]
    fn state_json_has_runc_field_order_and_zero_pid_when_stopped() {
        let json = serde_json::to_string(&sample().to_json(Status::Created, String::new()))
            .expect("serialises");
        assert_eq!(
            json,
            r#"{"ociVersion":"1.2.0","id":"x","pid":7638,"status":"created","bundle":"/tmp/rb/b","rootfs":"/tmp/rb/b/rootfs","created":"2026-11-30T04:36:21.817094816Z","owner":""}"#
        );
        let stopped = sample().to_json(Status::Stopped, String::new());
        assert_eq!(stopped.pid, 0);
        let mut annotated = sample();
        annotated.annotations.insert("k".into(), "v".into());
        let json = serde_json::to_string(&annotated.to_json(Status::Running, "root".into()))
            .expect("serialises");
        assert!(
            json.ends_with(r#""annotations":{"k":"v"},"owner":"root"}"#),
            "{json}"
        );
    }

    #[test]
    fn list_table_matches_go_tabwriter_layout() {
        let row = sample().to_json(Status::Created, "root".into());
        let table = list_table(&[row]);
        assert_eq!(
            table,
            "ID          PID         STATUS      BUNDLE      CREATED                          OWNER\n\
             x           7638        created     /tmp/rb/b   2026-11-30T04:36:21.817094816Z   root\n"
        );
        assert_eq!(
            list_table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
    }

    #[test]
    fn save_then_load_round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(ContainerState::load(dir.path(), "x")
            .expect("load")
            .is_none());
        std::fs::create_dir(dir.path().join("x")).expect("mkdir");
        sample().save(dir.path()).expect("save");
        let loaded = ContainerState::load(dir.path(), "x")
            .expect("load")
            .expect("exists");
        assert_eq!(loaded.init_pid, 7638);
        assert_eq!(loaded.created, sample().created);
    }

    #[test]
    fn second_save_replaces_the_state_and_leaves_only_state_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("x")).expect("mkdir");
        let mut s = sample();
        s.init_pid = 0;
        s.save(dir.path()).expect("first save");
        s.init_pid = 4321;
        s.save(dir.path()).expect("second save");
        let loaded = ContainerState::load(dir.path(), "x")
            .expect("load")
            .expect("exists");
        assert_eq!(loaded.init_pid, 4321);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("x"))
            .expect("read dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
    }

    #[test]
    fn status_is_stopped_when_init_pid_is_gone_or_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = sample();
        s.init_pid = 0;
        assert_eq!(s.status(dir.path(), || false), Status::Stopped);
        // Our own pid with a wrong start time is a reused pid.
        s.init_pid = std::process::id() as i32;
        s.init_start_time = u64::MAX;
        assert_eq!(s.status(dir.path(), || false), Status::Stopped);
        let me = proc_stat(s.init_pid).expect("own stat");
        s.init_start_time = me.start_time;
        assert_eq!(s.status(dir.path(), || false), Status::Running);
        assert_eq!(s.status(dir.path(), || true), Status::Paused);
        std::fs::create_dir(dir.path().join("x")).expect("mkdir");
        std::fs::write(dir.path().join("x").join(EXEC_FIFO), b"").expect("fifo stand-in");
        assert_eq!(s.status(dir.path(), || false), Status::Created);
    }
}
