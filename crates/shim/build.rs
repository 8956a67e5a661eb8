//! Links coracle-shim as a position-dependent executable (`-no-pie`).
//!
//! One shim stays resident per running container, so its private memory is multiplied by
//! the number of containers. As a PIE, the dynamic loader writes ~8,000 relocations into the
//! binary's read-only data (vtables, tables of string slices) at start, and every page it
//! touches becomes a private anonymous copy: about 160 KiB per shim, measured with
//! /proc/PID/smaps_rollup on idle containers (Pss_Anon 452 kB as a PIE, 292 kB without).
//! Linked at a fixed address, the linker resolves them all and those pages stay shared
//! with the file. The cost is that the shim's own code is not randomised by ASLR; its
//! libraries, heap and stack still are, and it is the one binary where this trade is made.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
