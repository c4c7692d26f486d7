//! berth: the command line, mirroring docker.

fn main() {
    eprintln!("berth: not implemented yet");
    std::process::exit(1);
}
