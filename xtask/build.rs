//! Passes the host target triple to the architecture check (`cargo metadata --filter-platform`).

fn main() {
    let host = std::env::var("HOST").unwrap_or_else(|_| "x86_64-unknown-linux-gnu".into());
    println!("cargo:rustc-env=XTASK_HOST={host}");
}
