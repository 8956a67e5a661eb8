//! Builds `init/coracle-init.rs`, the PID 1 of `run --init`, into a static executable that
//! src/engine/init_binary.rs embeds.
//!
//! It is one file compiled by the same rustc, not a workspace member: it needs
//! `panic = "abort"` and no C library (`-nostdlib`, its own `_start`), which cargo cannot
//! set for one binary of a workspace whose other binaries unwind and link glibc.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "init/coracle-init.rs";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-changed=build.rs");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("coracle-init");

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" {
        // The engine reports `--init` as unsupported when the embedded binary is empty.
        println!("cargo:warning=coracle-init is x86_64 only; --init is unavailable on {arch}");
        std::fs::write(&out, b"").expect("writing an empty coracle-init");
        return;
    }

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let status = Command::new(&rustc)
        .args([
            "--edition",
            "2024",
            "--crate-name",
            "coracle_init",
            "--crate-type",
            "bin",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "codegen-units=1",
        ])
        .args(["-C", "debuginfo=0", "-C", "strip=symbols"])
        // Static and not position-independent: no dynamic loader, no relocations.
        .args(["-C", "relocation-model=static", "-C", "link-arg=-static"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .arg(source)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", rustc.to_string_lossy()));
    assert!(status.success(), "compiling {source} failed: {status}");
}
