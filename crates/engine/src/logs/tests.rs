//! Reading logs written by berth-shim's own writer (tail, filters, rotation, follow).

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use berth_shim::logfile::{rotated_name, JsonFileLog, LineSplitter, Rotation, PARTIAL_SIZE};

use super::*;

const SECOND: i64 = 1_000_000_000;

fn all() -> LogOptions {
    LogOptions {
        stdout: true,
        stderr: true,
        ..LogOptions::default()
    }
}

/// Writes `line {i}\n` for each i at second `1000 + i`, stderr for odd i.
fn write_lines(log: &mut JsonFileLog, range: std::ops::Range<u64>) {
    for i in range {
        let stream = if i % 2 == 1 { "stderr" } else { "stdout" };
        let time = UNIX_EPOCH + Duration::from_secs(1000 + i);
        log.write_entry(stream, format!("line {i}\n").as_bytes(), time)
            .expect("write");
    }
}

fn unbounded() -> Rotation {
    Rotation {
        max_size: 0,
        max_file: 1,
    }
}

async fn collect(path: &Path, options: LogOptions) -> Vec<LogEntry> {
    let mut stream = read(path.to_path_buf(), options);
    let mut out = Vec::new();
    while let Some(entry) = stream.next().await {
        out.push(entry.expect("entry"));
    }
    out
}

fn texts(entries: &[LogEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.line).into_owned())
        .collect()
}

fn numbered(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|i| format!("line {i}\n")).collect()
}

#[tokio::test]
async fn reads_every_entry_with_stream_and_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c-json.log");
    write_lines(
        &mut JsonFileLog::open(&path, unbounded()).expect("open"),
        0..4,
    );
    let entries = collect(&path, all()).await;
    assert_eq!(texts(&entries), numbered(0..4));
    assert_eq!(entries[1].stream, LogStreamKind::Stderr);
    assert_eq!(entries[2].time_nanos, 1002 * SECOND);
}

#[tokio::test]
async fn rotated_files_are_read_oldest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let rotation = Rotation {
        max_size: 150,
        max_file: 10,
    };
    write_lines(
        &mut JsonFileLog::open(&path, rotation).expect("open"),
        0..12,
    );
    assert!(rotated_name(&path, 3).exists(), "the writer rotated");
    assert_eq!(texts(&collect(&path, all()).await), numbered(0..12));
}

#[tokio::test]
async fn tail_counts_back_across_rotated_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let rotation = Rotation {
        max_size: 150,
        max_file: 10,
    };
    write_lines(
        &mut JsonFileLog::open(&path, rotation).expect("open"),
        0..12,
    );
    for (tail, want) in [
        (0, 12..12),
        (1, 11..12),
        (5, 7..12),
        (12, 0..12),
        (50, 0..12),
    ] {
        let options = LogOptions {
            tail: Some(tail),
            ..all()
        };
        assert_eq!(
            texts(&collect(&path, options).await),
            numbered(want),
            "tail {tail}"
        );
    }
}

#[tokio::test]
async fn tail_reads_backwards_over_many_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    // About 200 KiB: several backwards chunks.
    write_lines(
        &mut JsonFileLog::open(&path, unbounded()).expect("open"),
        0..3000,
    );
    let options = LogOptions {
        tail: Some(2500),
        ..all()
    };
    assert_eq!(texts(&collect(&path, options).await), numbered(500..3000));
}

#[tokio::test]
async fn streams_since_and_until_filter_after_the_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    write_lines(
        &mut JsonFileLog::open(&path, unbounded()).expect("open"),
        0..10,
    );
    let stdout_only = LogOptions {
        stderr: false,
        ..all()
    };
    assert_eq!(
        texts(&collect(&path, stdout_only).await),
        vec!["line 0\n", "line 2\n", "line 4\n", "line 6\n", "line 8\n"]
    );
    let window = LogOptions {
        since: Some(1003 * SECOND),
        until: Some(1005 * SECOND),
        ..all()
    };
    assert_eq!(texts(&collect(&path, window).await), numbered(3..6));
    // As Docker: the tail is taken first, then the stream filter.
    let tail_then_filter = LogOptions {
        tail: Some(3),
        stderr: false,
        ..all()
    };
    assert_eq!(
        texts(&collect(&path, tail_then_filter).await),
        vec!["line 8\n"]
    );
}

#[tokio::test]
async fn long_lines_come_back_as_partial_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let mut log = JsonFileLog::open(&path, unbounded()).expect("open");
    let mut line = vec![b'x'; PARTIAL_SIZE + 10];
    line.push(b'\n');
    let mut messages = Vec::new();
    let mut splitter = LineSplitter::default();
    splitter.push(&line, &mut |m| messages.push(m.to_vec()));
    splitter.push(b"no newline at exit", &mut |m| messages.push(m.to_vec()));
    splitter.finish(&mut |m| messages.push(m.to_vec()));
    for message in &messages {
        log.write_entry("stdout", message, UNIX_EPOCH)
            .expect("write");
    }
    let entries = collect(&path, all()).await;
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].line.len(), PARTIAL_SIZE);
    assert!(!entries[0].line.ends_with(b"\n"));
    let joined: Vec<u8> = entries[..2].iter().flat_map(|e| e.line.clone()).collect();
    assert_eq!(joined, line);
    assert_eq!(entries[2].line, b"no newline at exit".to_vec());
}

#[tokio::test]
async fn a_missing_log_is_empty_and_a_torn_line_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    assert!(collect(&path, all()).await.is_empty());
    write_lines(
        &mut JsonFileLog::open(&path, unbounded()).expect("open"),
        0..1,
    );
    let mut text = std::fs::read(&path).expect("read");
    text.extend_from_slice(b"{\"log\":\"torn\n");
    std::fs::write(&path, &text).expect("write");
    write_lines(
        &mut JsonFileLog::open(&path, unbounded()).expect("open"),
        1..2,
    );
    assert_eq!(texts(&collect(&path, all()).await), numbered(0..2));
}

/// Follows `path`: once the first `existing` entries arrived, runs `writer` on another
/// thread and stops the follower when it has returned.
async fn follow_while(
    path: &Path,
    options: LogOptions,
    existing: usize,
    writer: impl FnOnce() + Send + 'static,
) -> Vec<LogEntry> {
    let (done, stop) = tokio::sync::oneshot::channel::<()>();
    let mut stream = read_until(path.to_path_buf(), options, async {
        let _ = stop.await;
    });
    let mut out = Vec::new();
    while out.len() < existing {
        out.push(stream.next().await.expect("existing entry").expect("entry"));
    }
    std::thread::spawn(move || {
        writer();
        let _ = done.send(());
    });
    while let Some(entry) = stream.next().await {
        out.push(entry.expect("entry"));
    }
    out
}

#[tokio::test]
async fn follow_loses_no_line_across_rotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let rotation = Rotation {
        max_size: 300,
        max_file: 50,
    };
    write_lines(&mut JsonFileLog::open(&path, rotation).expect("open"), 0..3);
    let writer_path = path.clone();
    let options = LogOptions {
        follow: true,
        tail: Some(2),
        ..all()
    };
    let entries = follow_while(&path, options, 2, move || {
        let mut log = JsonFileLog::open(&writer_path, rotation).expect("open");
        for batch in 0..6u64 {
            // Batches larger than a file: several rotations between two polls.
            write_lines(&mut log, 3 + batch * 10..13 + batch * 10);
            std::thread::sleep(Duration::from_millis(150));
        }
    })
    .await;
    assert_eq!(texts(&entries), numbered(1..63));
}

#[tokio::test]
async fn follow_restarts_after_truncation_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let rotation = Rotation {
        max_size: 200,
        max_file: 1,
    };
    write_lines(&mut JsonFileLog::open(&path, rotation).expect("open"), 0..2);
    let writer_path = path.clone();
    let options = LogOptions {
        follow: true,
        ..all()
    };
    let entries = follow_while(&path, options, 2, move || {
        let mut log = JsonFileLog::open(&writer_path, rotation).expect("open");
        for i in 2..8u64 {
            std::thread::sleep(Duration::from_millis(150));
            write_lines(&mut log, i..i + 1);
        }
    })
    .await;
    // Every line written after a poll is seen, truncation or not.
    assert_eq!(texts(&entries), numbered(0..8));
}

#[tokio::test]
async fn follow_waits_for_the_file_to_appear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let writer_path = path.clone();
    let options = LogOptions {
        follow: true,
        ..all()
    };
    let entries = follow_while(&path, options, 0, move || {
        std::thread::sleep(Duration::from_millis(150));
        write_lines(
            &mut JsonFileLog::open(&writer_path, unbounded()).expect("open"),
            0..2,
        );
    })
    .await;
    assert_eq!(texts(&entries), numbered(0..2));
}

#[tokio::test]
async fn follow_ends_at_until() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    write_lines(
        &mut JsonFileLog::open(&path, unbounded()).expect("open"),
        0..5,
    );
    let options = LogOptions {
        follow: true,
        until: Some(1002 * SECOND),
        ..all()
    };
    // Never stopped by the caller: the entry past `until` ends it.
    assert_eq!(texts(&collect(&path, options).await), numbered(0..3));
}
