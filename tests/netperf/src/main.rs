//! `netperf`: the bulk TCP sender and receiver of scripts/bench-network.sh, std only so it
//! builds as one static binary that runs in a busybox container (busybox nc truncates bulk
//! streams). `netperf recv PORT` takes one connection, counts what arrives until the
//! sender's half-close and answers with the count; `netperf send HOST PORT MIB` sends MIB
//! MiB, waits for that answer (so every byte was received) and prints MiB/s.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Size of each write and read: large enough that syscalls are not what is measured.
const CHUNK: usize = 256 * 1024;

/// How long `send` keeps retrying a refused connection (the receiver may still be starting).
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: netperf recv PORT | netperf send HOST PORT MIB";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["recv", port] => parse(port).and_then(|port: u16| {
            let listener = TcpListener::bind(("::", port))
                .or_else(|_| TcpListener::bind(("0.0.0.0", port)))?;
            let (bytes, elapsed) = receive(&listener)?;
            println!("{}", mib_per_second(bytes, elapsed));
            Ok(())
        }),
        ["send", host, port, mib] => parse(port).and_then(|port: u16| {
            let mib: u64 = parse(mib)?;
            let elapsed = send((host, port), mib * 1024 * 1024)?;
            println!("{}", mib_per_second(mib * 1024 * 1024, elapsed));
            Ok(())
        }),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, USAGE)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netperf: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse<T: std::str::FromStr>(text: &str) -> io::Result<T> {
    text.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a number: {text} ({USAGE})"),
        )
    })
}

/// MiB/s with one decimal.
fn mib_per_second(bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0) / seconds)
}

/// Accepts one connection, reads to EOF, answers with the byte count (8 bytes, big
/// endian). Returns the count and the time from the first byte to EOF.
fn receive(listener: &TcpListener) -> io::Result<(u64, Duration)> {
    let (mut stream, _) = listener.accept()?;
    let mut buffer = vec![0u8; CHUNK];
    let mut total = 0u64;
    let mut first: Option<Instant> = None;
    loop {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        first.get_or_insert_with(Instant::now);
        total += n as u64;
    }
    let elapsed = first.map(|t| t.elapsed()).unwrap_or_default();
    stream.write_all(&total.to_be_bytes())?;
    stream.flush()?;
    Ok((total, elapsed))
}

/// Connects (retrying while refused), sends `bytes`, half-closes and waits for the
/// receiver's count. Returns the time from connect to the count; an error if the
/// receiver counted a different number of bytes.
fn send(address: impl ToSocketAddrs + Copy, bytes: u64) -> io::Result<Duration> {
    let deadline = Instant::now() + CONNECT_PATIENCE;
    let mut stream = loop {
        match TcpStream::connect(address) {
            Ok(stream) => break stream,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    };
    let start = Instant::now();
    let buffer = vec![0x5au8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        stream.write_all(&buffer[..n])?;
        left -= n as u64;
    }
    stream.shutdown(Shutdown::Write)?;
    let mut count = [0u8; 8];
    stream.read_exact(&mut count)?;
    let elapsed = start.elapsed();
    let received = u64::from_be_bytes(count);
    if received != bytes {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the receiver counted {received} of {bytes} bytes"),
        ));
    }
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_sent_is_counted_by_the_receiver() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let receiver = std::thread::spawn(move || receive(&listener).expect("receive"));
        let bytes = 3 * CHUNK as u64 + 17;
        send(("127.0.0.1", port), bytes).expect("send");
        let (received, _) = receiver.join().expect("receiver thread");
        assert_eq!(received, bytes);
    }

    #[test]
    fn a_short_count_is_an_error() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // A receiver that answers after half the stream.
        let receiver = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut half = vec![0u8; CHUNK / 2];
            stream.read_exact(&mut half).expect("read half");
            stream
                .write_all(&((CHUNK / 2) as u64).to_be_bytes())
                .expect("answer");
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        });
        let err = send(("127.0.0.1", port), CHUNK as u64).expect_err("short count");
        assert_eq!(
            err.to_string(),
            format!("the receiver counted {} of {} bytes", CHUNK / 2, CHUNK)
        );
        receiver.join().expect("receiver thread");
    }

    #[test]
    fn rate_is_mebibytes_per_second() {
        assert_eq!(
            mib_per_second(3 * 1024 * 1024, Duration::from_secs(2)),
            "1.5"
        );
    }
}
