//! `coracle-runtime`: runc's command line over the coracle_runtime library.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
