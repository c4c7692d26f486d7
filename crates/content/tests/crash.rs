//! Crash safety: this test binary re-runs itself as a child that ingests or garbage-collects
//! in a loop, SIGKILLs it at random points, and checks after every kill that the store
//! opens, every blob matches its name, nothing committed was lost, and every partial ingest
//! is a correct prefix that resumes to the right blob.
//!
//! `harness = false`: `main` is either the parent (default) or, when
//! `BERTH_CONTENT_CRASH_CHILD` is set, the child.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_content::{BlobReader, BoxError, Expected, GcOptions, Store};
use berth_oci::Digest;

const CHILD_ENV: &str = "BERTH_CONTENT_CRASH_CHILD";
const ROOT_ENV: &str = "BERTH_CONTENT_CRASH_ROOT";
const ROUND_ENV: &str = "BERTH_CONTENT_CRASH_ROUND";
const ROUNDS: u32 = 20;

fn main() {
    match std::env::var(CHILD_ENV) {
        Ok(mode) => child(&mode),
        Err(_) => parent(),
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed_of(text: &str) -> u64 {
    let digest = Digest::sha256_of(text.as_bytes());
    u64::from_str_radix(&digest.hex()[..16], 16).expect("hex") | 1
}

/// The bytes a child writes for `reference`: deterministic, so the parent can check and
/// finish any partial ingest it finds.
fn content(reference: &str) -> Vec<u8> {
    let mut rng = Rng(seed_of(reference));
    let len = rng.below(100_000) as usize;
    (0..len).map(|_| rng.next() as u8).collect()
}

fn log_path(root: &Path) -> PathBuf {
    root.with_extension("log")
}

fn append_log(root: &Path, line: &str) {
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(root))
        .expect("open log");
    writeln!(log, "{line}").expect("write log");
}

fn say(word: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{word}").expect("stdout");
    out.flush().expect("flush stdout");
}

/// The toy manifest format shared by child and checks: `index` then child digests.
fn toy_children(_digest: &Digest, reader: &mut BlobReader) -> Result<Vec<Digest>, BoxError> {
    let mut text = String::new();
    if reader.read_to_string(&mut text).is_err() {
        return Ok(Vec::new());
    }
    let mut lines = text.lines();
    if lines.next() != Some("index") {
        return Ok(Vec::new());
    }
    lines
        .map(|l| Digest::parse(l).map_err(BoxError::from))
        .collect()
}

fn child(mode: &str) {
    let root = PathBuf::from(std::env::var(ROOT_ENV).expect("root"));
    let round = std::env::var(ROUND_ENV).expect("round");
    let store = Store::open(&root).expect("child opens store");
    for i in 0..10_000 {
        match mode {
            "ingest" => child_ingest(&store, &root, &format!("blob-{round}-{i}"), i),
            "gc" => child_gc(&store, &root, &format!("{round}-{i}")),
            other => panic!("unknown child mode {other}"),
        }
    }
}

fn child_ingest(store: &Store, root: &Path, reference: &str, i: u32) {
    let bytes = content(reference);
    let digest = Digest::sha256_of(&bytes);
    let mut writer = store
        .writer(
            reference,
            Expected::exact(digest.clone(), bytes.len() as u64),
        )
        .expect("writer");
    say("ingest-start");
    // Every third ingest is abandoned half-way, like a dropped download.
    let stop = if i % 3 == 2 {
        bytes.len() / 2
    } else {
        bytes.len()
    };
    for chunk in bytes[..stop].chunks(16 * 1024) {
        writer.append(chunk).expect("append");
    }
    if stop < bytes.len() {
        say("ingest-end");
        return;
    }
    let committed = writer.commit(Expected::none()).expect("commit");
    append_log(root, &format!("blob {} {reference}", committed.digest));
    say("ingest-end");
}

fn child_gc(store: &Store, root: &Path, name: &str) {
    let lease = format!("lease-{name}");
    store
        .create_lease(&lease, None, Default::default())
        .expect("lease");
    let layers: Vec<Vec<u8>> = (0..3)
        .map(|j| content(&format!("layer-{name}-{j}")))
        .collect();
    let digests: Vec<Digest> = layers.iter().map(|b| Digest::sha256_of(b)).collect();
    for (bytes, digest) in layers.iter().zip(&digests) {
        store
            .lease_add_content(&lease, digest)
            .expect("lease content");
        put(store, bytes, &format!("layer-{digest}"));
    }
    let mut index = b"index\n".to_vec();
    for d in &digests {
        index.extend_from_slice(format!("{d}\n").as_bytes());
    }
    let root_digest = put(store, &index, &format!("index-{name}"));
    append_log(root, &format!("root {root_digest}"));
    store.delete_lease(&lease).expect("release lease");
    for j in 0..5 {
        put(
            store,
            &content(&format!("garbage-{name}-{j}")),
            &format!("garbage-{name}-{j}"),
        );
    }
    let log_root = root.to_owned();
    let options = GcOptions {
        now: SystemTime::now() + Duration::from_secs(3600),
        ingest_expiry: Duration::ZERO,
    };
    say("gc-start");
    store
        .gc(
            move || Ok(read_log(&log_root).roots),
            toy_children,
            &options,
        )
        .expect("gc");
    say("gc-end");
}

fn put(store: &Store, bytes: &[u8], reference: &str) -> Digest {
    let mut writer = store.writer(reference, Expected::none()).expect("writer");
    writer.append(bytes).expect("append");
    writer.commit(Expected::none()).expect("commit").digest
}

#[derive(Default)]
struct Log {
    blobs: Vec<(Digest, String)>,
    roots: Vec<Digest>,
}

fn read_log(root: &Path) -> Log {
    let text = fs::read_to_string(log_path(root)).unwrap_or_default();
    let mut log = Log::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["blob", digest, reference] => log
                .blobs
                .push((Digest::parse(digest).expect("log"), (*reference).to_owned())),
            ["root", digest] => log.roots.push(Digest::parse(digest).expect("log")),
            // A line cut by the kill: the commit it reports may or may not have finished
            // writing the log, but then it was never promised to anyone.
            _ => {}
        }
    }
    log
}

struct KillStats {
    kills: u32,
    mid_operation: u32,
}

fn parent() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    println!("crash test seed {seed}");
    let mut rng = Rng(seed | 1);
    for mode in ["ingest", "gc"] {
        let dir = scratch_dir();
        let root = dir.path().join("content");
        let mut stats = KillStats {
            kills: 0,
            mid_operation: 0,
        };
        for round in 0..ROUNDS {
            run_and_kill(mode, &root, round, &mut rng, &mut stats);
            check_store(&root, mode);
        }
        println!(
            "{mode}: {} kills, {} mid-{mode}; store checked after each: ok",
            stats.kills, stats.mid_operation
        );
        assert!(stats.kills > 0, "the child was never killed");
    }
    println!("test result: ok. crash safety of ingest and gc");
}

/// A tmpfs when there is one: a SIGKILL (unlike power loss) keeps everything the kernel
/// accepted, so fsync costs time without testing anything more here.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

fn run_and_kill(mode: &str, root: &Path, round: u32, rng: &mut Rng, stats: &mut KillStats) {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .env(CHILD_ENV, mode)
        .env(ROOT_ENV, root)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let wanted_starts = 1 + rng.below(4);
    let mut starts = 0;
    let mut last = String::new();
    while starts < wanted_starts {
        match lines.next() {
            Some(Ok(line)) => {
                if line.ends_with("-start") {
                    starts += 1;
                }
                last = line;
            }
            _ => break,
        }
    }
    std::thread::sleep(Duration::from_micros(rng.below(1500)));
    child.kill().expect("SIGKILL child");
    let status = child.wait().expect("wait child");
    for line in lines.map_while(Result::ok) {
        last = line;
    }
    if !status.success() {
        stats.kills += 1;
        if last.ends_with("-start") {
            stats.mid_operation += 1;
        }
    }
}

fn check_store(root: &Path, mode: &str) {
    let store = Store::open(root).expect("store opens after a crash");
    for algorithm_dir in ["sha256", "sha512"] {
        let dir = root.join("blobs").join(algorithm_dir);
        for entry in fs::read_dir(&dir).expect("list blobs") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            let digest = Digest::parse(&format!("{algorithm_dir}:{name}"))
                .unwrap_or_else(|e| panic!("stray file {name:?} among blobs: {e}"));
            store
                .verify(&digest)
                .unwrap_or_else(|e| panic!("blob {digest} does not verify: {e}"));
        }
    }
    let log = read_log(root);
    for (digest, _) in &log.blobs {
        store
            .verify(digest)
            .unwrap_or_else(|e| panic!("committed blob {digest} lost: {e}"));
    }
    let mut reachable = BTreeSet::new();
    for root_digest in &log.roots {
        let mut reader = store
            .reader(root_digest)
            .unwrap_or_else(|e| panic!("root {root_digest} lost: {e}"));
        reachable.extend(toy_children(root_digest, &mut reader).expect("children"));
        reachable.insert(root_digest.clone());
    }
    for digest in &reachable {
        store
            .verify(digest)
            .unwrap_or_else(|e| panic!("referenced blob {digest} lost: {e}"));
    }
    if mode == "ingest" {
        finish_partial_ingests(&store);
    }
}

/// Every ingest left by a kill must hold a correct prefix of its content and resume to
/// the right blob.
fn finish_partial_ingests(store: &Store) {
    for status in store.ingests().expect("list ingests") {
        let bytes = content(&status.reference);
        let mut writer = store
            .writer(&status.reference, Expected::none())
            .expect("resume after crash");
        let offset = usize::try_from(writer.offset()).expect("offset");
        assert!(
            offset <= bytes.len(),
            "ingest {} is longer than its content",
            status.reference
        );
        assert_eq!(
            writer.digest(),
            Digest::sha256_of(&bytes[..offset]),
            "ingest {} prefix",
            status.reference
        );
        writer.append(&bytes[offset..]).expect("append rest");
        let committed = writer
            .commit(Expected::none())
            .expect("commit resumed ingest");
        assert_eq!(committed.digest, Digest::sha256_of(&bytes));
    }
}
