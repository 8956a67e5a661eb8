//! coracle-shim: watches one container. See the crate description.

fn main() {
    eprintln!("coracle-shim: not implemented yet");
    std::process::exit(1);
}
