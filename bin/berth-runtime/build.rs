//! Link options for the berth-runtime binary alone.
//!
//! `-z pack-relative-relocs` stores the binary's ~13,000 relative relocations (vtables,
//! string tables) as a compact DT_RELR bitmap instead of 24-byte RELA entries: the dynamic
//! loader applied them in ~0.4 ms per start, a tenth of a short `run`. The linker only
//! emits DT_RELR when the C library supports it (glibc 2.36+); older toolchains ignore
//! the option with a warning.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
