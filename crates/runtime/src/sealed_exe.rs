//! CVE-2019-5736: the container must never get a writable handle to the host's
//! runtime binary.
//!
//! Processes that enter a container's namespaces (init, exec'd processes before
//! their execve) are forks of the runtime, so their /proc/<pid>/exe is the runtime's
//! executable. If that were the host file, a process in the container could open it
//! through /proc/<pid>/exe and overwrite it. Before forking into a container the
//! runtime therefore re-executes itself from a sealed memfd copy: /proc/<pid>/exe
//! then names an anonymous, write-sealed file, and the host binary is never exposed.
//! The processes are also made non-dumpable while they run runtime code in the
//! container (see `process`).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;

use crate::sys::raw;

const SEALS: libc::c_int =
    raw::F_SEAL_SEAL | raw::F_SEAL_SHRINK | raw::F_SEAL_GROW | raw::F_SEAL_WRITE;

/// True if this process already runs from a sealed copy.
pub fn is_sealed() -> bool {
    match File::open("/proc/self/exe") {
        Ok(f) => raw::get_seals(f.as_raw_fd()).is_ok_and(|s| s & SEALS == SEALS),
        Err(_) => false,
    }
}

/// Re-exec the current binary from a sealed memfd copy, unless already sealed.
/// Returns only on failure.
pub fn ensure_sealed() -> Result<(), String> {
    if is_sealed() {
        return Ok(());
    }
    let err = |what: &str, e: &dyn std::fmt::Display| format!("sealed re-exec: {what}: {e}");
    let mut exe = File::open("/proc/self/exe").map_err(|e| err("open /proc/self/exe", &e))?;
    let memfd =
        raw::memfd_create_sealable("coracle-runtime").map_err(|e| err("memfd_create", &e))?;
    let mut copy = File::from(memfd);
    // std::io::copy uses copy_file_range/sendfile: the copy stays in the kernel.
    std::io::copy(&mut exe, &mut copy).map_err(|e| err("copy /proc/self/exe", &e))?;
    raw::add_seals(copy.as_raw_fd(), SEALS).map_err(|e| err("F_ADD_SEALS", &e))?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()).expect("argv has no NUL"))
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).expect("environ has no NUL")
        })
        .collect();
    let e: Errno = nix::unistd::fexecve(copy.as_fd().as_raw_fd(), &args, &env).unwrap_err();
    Err(err("fexecve", &e))
}
