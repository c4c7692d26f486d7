//! A plain HTTP/1.0 GET from the host, for published-port checks.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Hang guard for a server that never answers (not a performance assertion).
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// `GET path` to `addr` from the host, retried until the server answers anything.
pub fn http_get(addr: &str, path: &str) -> String {
    let start = Instant::now();
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if !reply.is_empty() {
                return reply;
            }
        }
        assert!(start.elapsed() < ANSWER_LIMIT, "{addr} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}
