//! berth-runtime: the OCI runtime binary (runc's command-line contract).

fn main() {
    eprintln!("berth-runtime: not implemented yet");
    std::process::exit(1);
}
