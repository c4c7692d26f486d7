//! berthd on TCP: mutual TLS as Docker's `--tlsverify` (the real docker CLI with a client
//! certificate gets in, a client without one does not), and plain TCP refused unless forced.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn berthd_binary() -> PathBuf {
    let dir = std::env::var_os("BERTH_BIN_DIR").unwrap_or_else(|| {
        panic!("BERTH_BIN_DIR is not set: run the e2e tests through scripts/test.sh")
    });
    Path::new(&dir).join("berthd")
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as `docker` expects
/// them in DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=berth-test-ca",
    ]);
    openssl(dir, &ca);
    std::fs::create_dir_all(dir.join("client")).expect("client dir");
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for (key, cert, ext, cn) in [
        ("key.pem", "cert.pem", "server.ext", "/CN=localhost"),
        (
            "client/key.pem",
            "client/cert.pem",
            "client.ext",
            "/CN=client",
        ),
    ] {
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", key, "-out", "request.csr", "-subj", cn]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "request.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                cert,
                "-days",
                "2",
                "-extfile",
                ext,
            ],
        );
    }
    std::fs::copy(dir.join("ca.pem"), dir.join("client/ca.pem")).expect("ca copy");
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn berthd(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(berthd_binary());
    cmd.arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--config-file")
        .arg(dir.join("absent.json"))
        .args(extra)
        .stdin(Stdio::null());
    cmd
}

fn docker(args: &[&str], cert_path: &Path) -> Output {
    Command::new("/usr/local/bin/docker")
        .env("DOCKER_CERT_PATH", cert_path)
        .args(args)
        .output()
        .expect("docker CLI runs")
}

#[test]
fn docker_cli_with_a_client_certificate_reaches_berthd_over_mutual_tls() {
    berth_e2e::require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path());
    let host = format!("tcp://127.0.0.1:{}", free_port());
    let child = berthd(dir.path(), &["-H", &host, "--tlsverify"])
        .arg("--tlscacert")
        .arg(dir.path().join("ca.pem"))
        .arg("--tlscert")
        .arg(dir.path().join("cert.pem"))
        .arg("--tlskey")
        .arg(dir.path().join("key.pem"))
        .stderr(Stdio::null())
        .spawn()
        .expect("berthd starts");
    let _daemon = Daemon(child);
    let args = [
        "-H",
        host.as_str(),
        "--tlsverify",
        "version",
        "--format",
        "{{.Server.APIVersion}}",
    ];
    let mut out = docker(&args, &dir.path().join("client"));
    for _ in 0..100 {
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        out = docker(&args, &dir.path().join("client"));
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.50");

    // Same CA, no client certificate: the handshake fails and nothing is served.
    let anonymous = dir.path().join("anonymous");
    std::fs::create_dir_all(&anonymous).expect("dir");
    std::fs::copy(dir.path().join("ca.pem"), anonymous.join("ca.pem")).expect("ca");
    let curl = Command::new("curl")
        .args(["-s", "--max-time", "10", "--cacert"])
        .arg(anonymous.join("ca.pem"))
        .arg(format!("{}/_ping", host.replace("tcp://", "https://")))
        .output()
        .expect("curl runs");
    assert!(
        !curl.status.success(),
        "a client without a certificate was served"
    );
    assert!(curl.stdout.is_empty());
}

#[test]
fn berthd_refuses_plain_tcp_unless_forced() {
    berth_e2e::require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let host = format!("tcp://127.0.0.1:{}", free_port());
    let out = berthd(dir.path(), &["-H", &host])
        .output()
        .expect("berthd runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("without mutual TLS") && stderr.contains("--tlsverify"),
        "{stderr}"
    );
}
