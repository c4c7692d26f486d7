//! Unpack throughput probe: `cargo run --release -p berth-snapshot --example unpack -- LAYER DIR
//! [--serial]` applies LAYER (plain, gzip or zstd) onto the empty directory DIR (decompressing
//! on a second thread unless `--serial`) and prints the DiffID and the uncompressed MB/s, for
//! side-by-side runs against `tar -xf` under hyperfine.

use std::time::Instant;

use berth_snapshot::{apply_layer, apply_layer_parallel, ApplyOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(layer), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: unpack LAYER DIR".into());
    };
    let input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&layer)?);
    let options = if rustix::process::geteuid().is_root() {
        ApplyOptions::native()
    } else {
        ApplyOptions::unprivileged()
    };
    let start = Instant::now();
    let target = std::path::Path::new(&dir);
    let summary = if args.next().is_some_and(|a| a == "--serial") {
        apply_layer(input, target, &options)?
    } else {
        apply_layer_parallel(input, target, &options)?
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} entries, {} bytes, {:.1} MB/s, {}",
        summary.entries,
        summary.size,
        summary.size as f64 / secs / 1e6,
        summary.diff_id_string()
    );
    Ok(())
}
