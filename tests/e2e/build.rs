//! Builds berth-probe (probe/main.rs) as a static executable that tests copy into rootfses.
//!
//! The probe must run in a rootfs that holds nothing but busybox, so it is linked statically
//! (`+crt-static` with glibc's libc.a) by invoking the same rustc cargo uses for this package.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "probe/main.rs";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-changed=build.rs");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let target = std::env::var("TARGET").expect("invariant: cargo sets TARGET for build scripts");
    let out_dir = PathBuf::from(
        std::env::var("OUT_DIR").expect("invariant: cargo sets OUT_DIR for build scripts"),
    );
    let output = out_dir.join("berth-probe");
    let status = Command::new(rustc)
        .args(["--edition", "2021", "--crate-name", "berth_probe", "-O"])
        .args([
            "-C",
            "target-feature=+crt-static",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        .args(["--target", &target])
        .arg("-o")
        .arg(&output)
        .arg(source)
        .status()
        .expect("could not run rustc to build berth-probe");
    assert!(
        status.success(),
        "building the static berth-probe failed (needs glibc's libc.a: apt-get install libc6-dev)"
    );
    println!("cargo:rustc-env=BERTH_PROBE_PATH={}", output.display());
}
