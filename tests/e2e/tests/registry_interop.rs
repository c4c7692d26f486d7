//! berth's registry client and berth-registry against real peers: Debian's docker-registry
//! (distribution 2.8) and skopeo, all on 127.0.0.1. The tools are required: a missing one
//! fails the test (scripts/setup.sh installs them).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_content::Store;
use berth_oci::{Digest, Platform};
use berth_registry::client::{ClientOptions, Credentials, RegistryClient};

/// A server process killed (by its PID) and reaped when the test ends, pass or fail.
struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let path = Path::new(dir).join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!("{name} is missing: apt-get install {name} (scripts/setup.sh does)");
}

fn berth_registry_binary() -> PathBuf {
    let dir = std::env::var_os("BERTH_BIN_DIR").unwrap_or_else(|| {
        panic!("BERTH_BIN_DIR is not set: run the e2e tests through scripts/test.sh")
    });
    let binary = Path::new(&dir).join("berth-registry");
    assert!(
        binary.is_file(),
        "{} is missing: cargo build --release --bins",
        binary.display()
    );
    binary
}

/// Polls until the port accepts connections (the process may still be starting).
fn wait_listening(daemon: &mut Daemon) {
    for _ in 0..200 {
        if TcpStream::connect(daemon.addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("registry on {} exited early: {status}", daemon.addr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("registry on {} never listened", daemon.addr);
}

fn start_berth_registry(root: &Path) -> Daemon {
    let addr = free_addr();
    let child = Command::new(berth_registry_binary())
        .args(["serve", "--listen", &addr.to_string(), "--root"])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start berth-registry");
    let mut daemon = Daemon { child, addr };
    wait_listening(&mut daemon);
    daemon
}

fn start_docker_registry(dir: &Path) -> Daemon {
    let addr = free_addr();
    let config = dir.join("config.yml");
    let storage = dir.join("storage");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            storage.display()
        ),
    )
    .expect("write config");
    let child = Command::new(tool("docker-registry"))
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let mut daemon = Daemon { child, addr };
    wait_listening(&mut daemon);
    daemon
}

fn put(store: &Store, bytes: &[u8]) -> Digest {
    let digest = Digest::sha256_of(bytes);
    if !store.contains(&digest) {
        let mut writer = store
            .writer(
                &format!("e2e/{digest}"),
                berth_content::Expected::digest(digest.clone()),
            )
            .expect("writer");
        writer.append(bytes).expect("append");
        writer
            .commit(berth_content::Expected::digest(digest.clone()))
            .expect("commit");
    }
    digest
}

/// A one-layer image (a real tar with one file) in `store`; returns the manifest digest.
fn image(store: &Store, content: &str) -> (Digest, Vec<u8>) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "hello.txt", content.as_bytes())
        .expect("tar");
    let layer = builder.into_inner().expect("tar");
    let layer_digest = Digest::sha256_of(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["cat", "/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
    });
    let config = serde_json::to_vec(&config).expect("json");
    let config_digest = put(store, &config);
    put(store, &layer);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.to_string(), "size": layer.len()}],
    });
    let manifest = serde_json::to_vec_pretty(&manifest).expect("json");
    (put(store, &manifest), manifest)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn linux_amd64() -> Platform {
    Platform::new("linux", "amd64", "")
}

#[test]
fn berth_client_moves_an_image_between_berth_registry_and_docker_registry_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let berth = start_berth_registry(&dir.path().join("berth"));
    std::fs::create_dir_all(dir.path().join("distribution")).expect("mkdir");
    let distribution = start_docker_registry(&dir.path().join("distribution"));
    let source = Store::open(dir.path().join("source")).expect("store");
    let (digest, manifest) = image(&source, "hello from berth\n");
    runtime().block_on(async {
        let options = ClientOptions {
            chunk_size: Some(300),
            ..ClientOptions::default()
        };
        let to_berth = RegistryClient::connect(
            &berth.addr.to_string(),
            Credentials::Anonymous,
            options.clone(),
        )
        .await
        .expect("connect berth-registry");
        let to_distribution = RegistryClient::connect(
            &distribution.addr.to_string(),
            Credentials::Anonymous,
            options,
        )
        .await
        .expect("connect docker-registry");
        // berth -> berth-registry -> berth -> docker-registry -> berth -> berth-registry.
        to_berth
            .push("e2e/app", "v1", &digest, &source, None, None)
            .await
            .expect("push to berth-registry");
        let hop1 = Store::open(dir.path().join("hop1")).expect("store");
        let pulled = to_berth
            .pull("e2e/app", "v1", &linux_amd64(), &hop1, None)
            .await
            .expect("pull berth-registry");
        assert_eq!(pulled.manifest_digest, digest);
        to_distribution
            .push("e2e/app", "v1", &digest, &hop1, None, None)
            .await
            .expect("push to docker-registry");
        let hop2 = Store::open(dir.path().join("hop2")).expect("store");
        let pulled = to_distribution
            .pull("e2e/app", "v1", &linux_amd64(), &hop2, None)
            .await
            .expect("pull docker-registry");
        assert_eq!(
            pulled.manifest_digest, digest,
            "docker-registry keeps the manifest bytes"
        );
        assert_eq!(hop2.read_to_vec(&digest).expect("manifest"), manifest);
        for layer in &pulled.layers {
            assert_eq!(
                hop2.read_to_vec(layer).expect("layer"),
                source.read_to_vec(layer).expect("layer")
            );
        }
        to_berth
            .push("e2e/back", "v2", &digest, &hop2, Some("e2e/app"), None)
            .await
            .expect("push back");
        let hop3 = Store::open(dir.path().join("hop3")).expect("store");
        let pulled = to_berth
            .pull("e2e/back", "v2", &linux_amd64(), &hop3, None)
            .await
            .expect("pull back");
        assert_eq!(pulled.manifest_digest, digest);
    });
}

#[test]
fn skopeo_copies_between_docker_registry_and_berth_registry_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let berth = start_berth_registry(&dir.path().join("berth"));
    std::fs::create_dir_all(dir.path().join("distribution")).expect("mkdir");
    let distribution = start_docker_registry(&dir.path().join("distribution"));
    let source = Store::open(dir.path().join("source")).expect("store");
    let (digest, manifest) = image(&source, "registry to registry\n");
    let layout = dir.path().join("layout");
    write_oci_layout(&source, &digest, &manifest, &layout);
    let on_distribution = format!("docker://{}/r2r/app:v1", distribution.addr);
    let on_berth = format!("docker://{}/r2r/app:v1", berth.addr);
    let back = format!("docker://{}/r2r/back:v1", distribution.addr);
    let plain = [
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--preserve-digests",
    ];
    skopeo(
        &[
            &["copy"][..],
            &plain,
            &[&format!("oci:{}:v1", layout.display()), &on_distribution],
        ]
        .concat(),
    );
    skopeo(&[&["copy"][..], &plain, &[&on_distribution, &on_berth]].concat());
    skopeo(&[&["copy"][..], &plain, &[&on_berth, &back]].concat());
    for remote in [&on_berth, &back] {
        let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", remote]);
        assert_eq!(
            raw.as_bytes(),
            manifest.as_slice(),
            "{remote} serves the manifest byte for byte"
        );
    }
}

/// Writes `store`'s image as an OCI image layout that skopeo reads.
fn write_oci_layout(store: &Store, digest: &Digest, manifest: &[u8], dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    let parsed: serde_json::Value = serde_json::from_slice(manifest).expect("json");
    let mut digests = vec![
        digest.clone(),
        Digest::parse(parsed["config"]["digest"].as_str().expect("config")).expect("digest"),
    ];
    for layer in parsed["layers"].as_array().expect("layers") {
        digests.push(Digest::parse(layer["digest"].as_str().expect("digest")).expect("digest"));
    }
    for d in digests {
        std::fs::write(blobs.join(d.hex()), store.read_to_vec(&d).expect("blob"))
            .expect("write blob");
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest.to_string(), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index");
}

fn skopeo(args: &[&str]) -> String {
    let output = Command::new(tool("skopeo"))
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn skopeo_copies_to_and_from_berth_registry_with_digests_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let berth = start_berth_registry(&dir.path().join("berth"));
    let source = Store::open(dir.path().join("source")).expect("store");
    let (digest, manifest) = image(&source, "hello from skopeo\n");
    let layout = dir.path().join("layout");
    write_oci_layout(&source, &digest, &manifest, &layout);
    let remote = format!("docker://{}/skopeo/app:v1", berth.addr);
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &remote,
    ]);
    let inspect = skopeo(&["inspect", "--tls-verify=false", "--raw", &remote]);
    let inspected: serde_json::Value = serde_json::from_str(&inspect).expect("manifest json");
    assert_eq!(
        inspected["config"]["digest"],
        serde_json::from_slice::<serde_json::Value>(&manifest).expect("json")["config"]["digest"]
    );
    // berth's client sees what skopeo pushed, byte for byte.
    runtime().block_on(async {
        let client = RegistryClient::connect(
            &berth.addr.to_string(),
            Credentials::Anonymous,
            ClientOptions::default(),
        )
        .await
        .expect("connect");
        let pulled_store = Store::open(dir.path().join("pulled")).expect("store");
        let pulled = client
            .pull("skopeo/app", "v1", &linux_amd64(), &pulled_store, None)
            .await
            .expect("pull");
        assert_eq!(pulled.manifest_digest, digest);
    });
    // And skopeo pulls it back out into a new layout with the same manifest digest.
    let back = dir.path().join("back");
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:v1", back.display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["manifests"][0]["digest"], digest.to_string());
    let copied =
        std::fs::read(back.join("blobs/sha256").join(digest.hex())).expect("manifest blob");
    assert_eq!(copied, manifest);
}

fn openssl(args: &[&str], dir: &Path) {
    let status = Command::new(tool("openssl"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A test CA and a server certificate for 127.0.0.1 signed by it (webpki refuses a CA
/// certificate used as the server's own); returns (ca, cert, key) paths.
fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=berth test ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        dir,
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
        dir,
    );
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

#[test]
fn skopeo_and_berth_client_use_tls_and_htpasswd_on_berth_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = test_certificates(dir.path());
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).expect("htpasswd");
    let addr = free_addr();
    let child = Command::new(berth_registry_binary())
        .args(["serve", "--listen", &addr.to_string(), "--root"])
        .arg(dir.path().join("root"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--htpasswd")
        .arg(&htpasswd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start berth-registry");
    let mut berth = Daemon { child, addr };
    wait_listening(&mut berth);
    let source = Store::open(dir.path().join("source")).expect("store");
    let (digest, manifest) = image(&source, "hello over tls\n");
    let layout = dir.path().join("layout");
    write_oci_layout(&source, &digest, &manifest, &layout);
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(&ca, certs.join("ca.crt")).expect("copy ca");
    let remote = format!("docker://{addr}/secure/app:v1");
    let cert_dir = format!("--dest-cert-dir={}", certs.display());
    let output = Command::new(tool("skopeo"))
        .args([
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            &cert_dir,
            &format!("oci:{}:v1", layout.display()),
            &remote,
        ])
        .output()
        .expect("run skopeo");
    assert!(
        !output.status.success(),
        "a push without credentials is refused"
    );
    skopeo(&[
        "copy",
        "--preserve-digests",
        &cert_dir,
        "--dest-creds=alice:s3cret",
        &format!("oci:{}:v1", layout.display()),
        &remote,
    ]);
    runtime().block_on(async {
        let options = ClientOptions {
            root_certificates: vec![std::fs::read(&ca).expect("ca")],
            ..ClientOptions::default()
        };
        let creds = Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        let client = RegistryClient::connect(&addr.to_string(), creds, options)
            .await
            .expect("connect");
        assert_eq!(client.scheme(), "https");
        let pulled_store = Store::open(dir.path().join("pulled")).expect("store");
        let pulled = client
            .pull("secure/app", "v1", &linux_amd64(), &pulled_store, None)
            .await
            .expect("pull over tls");
        assert_eq!(pulled.manifest_digest, digest);
    });
}
