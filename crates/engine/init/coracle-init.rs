//! coracle-init: the process `coracle run --init` puts at PID 1.
//!
//! It starts the container's command as its only child, forwards every signal it receives
//! to that child, reaps every process that is re-parented to it, and exits with the child's
//! status (128 + N when the child was killed by signal N) as soon as the child is gone.
//!
//! It is mounted read-only into containers whose images may have no C library at all, so it
//! is built without one: `#![no_std]`, raw system calls, its own `_start`. crates/engine's
//! build.rs compiles this one file with the workspace's rustc into a static, non-PIE
//! executable of a few KiB, and the engine embeds it (see src/engine/init_binary.rs).
//! x86_64 only, like the system-call table below.
//!
//! The order of operations, and why:
//! 1. Block every signal before `fork`, so that nothing sent between the fork and the
//!    supervision loop is lost: a blocked signal stays pending and `rt_sigtimedwait`
//!    collects it. For PID 1 of a PID namespace this is also what makes signals from the
//!    host arrive at all: the kernel drops a signal to a namespace's init for which the
//!    init has no handler, unless the signal is blocked.
//! 2. The child moves into a process group of its own and, when stdin is a terminal, makes
//!    that group the terminal's foreground group, so ^C on `run -it --init` reaches the
//!    command and not the init. Its signals are still blocked at that point, so
//!    `TIOCSPGRP` from a background group cannot stop it with SIGTTOU.
//! 3. The child restores the signal mask the init was started with, then execs.
#![no_std]
#![no_main]
// The compiler may turn the byte loops of `memset`/`memcpy` below into calls to
// themselves; no_builtins forbids that.
#![no_builtins]

#[cfg(not(target_arch = "x86_64"))]
compile_error!("coracle-init is written for x86_64 system calls");

use core::arch::{asm, global_asm};

// The kernel enters at `_start` with the stack pointer at argc, followed by the argv
// pointers, a null, the envp pointers and a null. Hand that address to Rust with the
// 16-byte stack alignment the ABI requires for a call.
global_asm!(
    ".globl _start",
    "_start:",
    "mov rdi, rsp",
    "and rsp, -16",
    "call init_main",
    "ud2",
);

mod nr {
    pub const WRITE: usize = 1;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const IOCTL: usize = 16;
    pub const GETPID: usize = 39;
    pub const FORK: usize = 57;
    pub const EXECVE: usize = 59;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const SETPGID: usize = 109;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const EXIT_GROUP: usize = 231;
}

const SIG_BLOCK: usize = 0;
const SIG_SETMASK: usize = 2;
const SIGCHLD: isize = 17;
const TIOCSPGRP: usize = 0x5410;
const WNOHANG: usize = 1;
/// The kernel's signal set is 64 bits on x86_64.
const SIGSET_SIZE: usize = 8;

const ENOENT: isize = 2;
const EINTR: isize = 4;
const EAGAIN: isize = 11;
const EACCES: isize = 13;
const ENOTDIR: isize = 20;

const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A system call with up to four arguments; returns the kernel's value (-errno on failure).
///
/// # Safety
/// The arguments must be valid for system call `n`: pointers to memory of the size and
/// mutability that call expects.
unsafe fn syscall(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 Linux system-call convention: number in rax, arguments in rdi,
    // rsi, rdx, r10; the kernel clobbers rcx and r11. Memory validity is the caller's.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn exit(code: u8) -> ! {
    // SAFETY: exit_group takes no pointers.
    unsafe { syscall(nr::EXIT_GROUP, code as usize, 0, 0, 0) };
    // exit_group does not return.
    loop {}
}

fn write_stderr(parts: &[&[u8]]) {
    for part in parts {
        // SAFETY: `part` is a live slice of `part.len()` bytes. A failed write to stderr
        // has nowhere better to be reported.
        unsafe { syscall(nr::WRITE, 2, part.as_ptr() as usize, part.len(), 0) };
    }
}

fn die(parts: &[&[u8]], code: u8) -> ! {
    write_stderr(&[b"coracle-init: "]);
    write_stderr(parts);
    write_stderr(&[b"\n"]);
    exit(code)
}

/// The bytes of a NUL-terminated string.
///
/// # Safety
/// `p` must point at a NUL-terminated string that outlives the returned slice.
unsafe fn c_str<'a>(p: *const u8) -> &'a [u8] {
    let mut n = 0;
    // SAFETY: the caller promises a terminating NUL.
    unsafe {
        while *p.add(n) != 0 {
            n += 1;
        }
        core::slice::from_raw_parts(p, n)
    }
}

/// `errno` written in decimal, into `buf`.
fn decimal(mut v: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// Entered from `_start` with the initial stack pointer.
///
/// # Safety
/// `sp` must be the process's initial stack as the kernel laid it out.
#[unsafe(no_mangle)]
unsafe extern "C" fn init_main(sp: *const usize) -> ! {
    // SAFETY: the kernel's layout: argc, then argc argv pointers and a null, then the
    // environment pointers and a null; all of them NUL-terminated strings.
    let (argc, argv, envp) = unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const u8;
        (argc, argv, argv.add(argc + 1))
    };
    let mut first = 1;
    // SAFETY: index 1 exists when argc > 1.
    if argc > 1 && unsafe { c_str(*argv.add(1)) } == b"--" {
        first = 2;
    }
    if first >= argc {
        die(&[b"usage: coracle-init [--] COMMAND [ARG...]"], 2);
    }

    // 1. Everything blocked; `original` is restored in the child before exec.
    let all: u64 = !0;
    let mut original: u64 = 0;
    // SAFETY: both sets are 8-byte values, as SIGSET_SIZE says.
    unsafe {
        syscall(
            nr::RT_SIGPROCMASK,
            SIG_BLOCK,
            &all as *const u64 as usize,
            &mut original as *mut u64 as usize,
            SIGSET_SIZE,
        )
    };

    // SAFETY: fork takes no arguments; this process has one thread.
    let child = unsafe { syscall(nr::FORK, 0, 0, 0, 0) };
    if child < 0 {
        let mut b = [0; 20];
        die(&[b"fork: errno ", decimal((-child) as usize, &mut b)], 1);
    }
    if child == 0 {
        // SAFETY: argv[first..] is a null-terminated array of C strings, envp likewise.
        unsafe { run_child(argv.add(first), envp, original) }
    }
    supervise(child, all)
}

/// 2 and 3: the child's own process group, the terminal's foreground, the original signal
/// mask, then the command.
///
/// # Safety
/// `cmd` and `envp` must be null-terminated arrays of NUL-terminated strings.
unsafe fn run_child(cmd: *const *const u8, envp: *const *const u8, mask: u64) -> ! {
    // SAFETY: setpgid and getpid take no pointers; TIOCSPGRP reads one i32 that lives on
    // this stack; a stdin that is no terminal fails with ENOTTY, which is fine.
    unsafe {
        syscall(nr::SETPGID, 0, 0, 0, 0);
        let pgid = syscall(nr::GETPID, 0, 0, 0, 0) as i32;
        syscall(nr::IOCTL, 0, TIOCSPGRP, &pgid as *const i32 as usize, 0);
        syscall(
            nr::RT_SIGPROCMASK,
            SIG_SETMASK,
            &mask as *const u64 as usize,
            0,
            SIGSET_SIZE,
        );
    }
    // SAFETY: forwarded from the caller.
    unsafe { exec_command(cmd, envp) }
}

/// execve of `cmd[0]`, searched in `$PATH` when it has no slash, as execvp does. Returns
/// only by exiting: 127 when the command was not found, 126 when it could not be run.
///
/// # Safety
/// As for [`run_child`].
unsafe fn exec_command(cmd: *const *const u8, envp: *const *const u8) -> ! {
    // SAFETY: the caller's promise.
    let file = unsafe { c_str(*cmd) };
    let exec = |path: *const u8| -> isize {
        // SAFETY: path is NUL-terminated; cmd and envp are the caller's arrays.
        unsafe { syscall(nr::EXECVE, path as usize, cmd as usize, envp as usize, 0) }
    };
    if file.is_empty() {
        die(&[b"exec: empty command"], 127);
    }
    if file.contains(&b'/') {
        let err = -exec(file.as_ptr());
        exec_failed(file, err);
    }

    // SAFETY: the caller's promise about envp.
    let search = unsafe { env_value(envp, b"PATH") }.unwrap_or(DEFAULT_PATH);
    let mut buf = [0u8; 4096];
    let mut denied = false;
    for dir in search.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let len = dir.len() + 1 + file.len();
        if len >= buf.len() {
            continue;
        }
        buf[..dir.len()].copy_from_slice(dir);
        buf[dir.len()] = b'/';
        buf[dir.len() + 1..len].copy_from_slice(file);
        buf[len] = 0;
        match -exec(buf.as_ptr()) {
            ENOENT | ENOTDIR => {}
            EACCES => denied = true,
            err => exec_failed(file, err),
        }
    }
    exec_failed(file, if denied { EACCES } else { ENOENT })
}

fn exec_failed(file: &[u8], errno: isize) -> ! {
    match errno {
        ENOENT => die(
            &[b"exec: \"", file, b"\": executable file not found in $PATH"],
            127,
        ),
        EACCES => die(&[b"exec: \"", file, b"\": permission denied"], 126),
        _ => {
            let mut b = [0; 20];
            die(
                &[
                    b"exec: \"",
                    file,
                    b"\": errno ",
                    decimal(errno as usize, &mut b),
                ],
                126,
            )
        }
    }
}

/// The value of `name` in a null-terminated environment array.
///
/// # Safety
/// `envp` must be a null-terminated array of NUL-terminated strings that outlive the result.
unsafe fn env_value<'a>(envp: *const *const u8, name: &[u8]) -> Option<&'a [u8]> {
    let mut i = 0;
    loop {
        // SAFETY: the caller's promise; the loop stops at the terminating null.
        let entry = unsafe { *envp.add(i) };
        if entry.is_null() {
            return None;
        }
        // SAFETY: as above.
        let kv = unsafe { c_str(entry) };
        if kv.len() > name.len() && kv.starts_with(name) && kv[name.len()] == b'=' {
            return Some(&kv[name.len() + 1..]);
        }
        i += 1;
    }
}

/// Forward every signal to the child and reap every exited process until the child itself
/// has exited; then exit with its status.
fn supervise(child: isize, all: u64) -> ! {
    loop {
        // siginfo_t is 128 bytes; only the signal number (the return value) is used.
        let mut info = [0u64; 16];
        // SAFETY: an 8-byte set, a 128-byte siginfo buffer, no timeout (wait for ever).
        let sig = unsafe {
            syscall(
                nr::RT_SIGTIMEDWAIT,
                &all as *const u64 as usize,
                info.as_mut_ptr() as usize,
                0,
                SIGSET_SIZE,
            )
        };
        if sig == -EINTR || sig == -EAGAIN {
            continue;
        }
        if sig < 0 {
            let mut b = [0; 20];
            die(
                &[b"rt_sigtimedwait: errno ", decimal((-sig) as usize, &mut b)],
                1,
            );
        }
        if sig != SIGCHLD {
            // The child may be gone already (ESRCH); its SIGCHLD is pending then.
            // SAFETY: kill takes no pointers.
            unsafe { syscall(nr::KILL, child as usize, sig as usize, 0, 0) };
            continue;
        }
        // One SIGCHLD may stand for several exits: reap until nothing is left to reap.
        loop {
            let mut status: i32 = 0;
            // SAFETY: wait4 writes one i32 status; no rusage.
            let pid = unsafe {
                syscall(
                    nr::WAIT4,
                    -1isize as usize,
                    &mut status as *mut i32 as usize,
                    WNOHANG,
                    0,
                )
            };
            if pid <= 0 {
                break;
            }
            if pid == child {
                let signal = status & 0x7f;
                if signal == 0 {
                    exit(((status >> 8) & 0xff) as u8);
                }
                exit(128u8.wrapping_add(signal as u8));
            }
        }
    }
}

/// Parts of the precompiled `core` carry unwind tables that name this symbol. With
/// panic=abort nothing ever unwinds, so it is never called; it only has to exist.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    die(&[b"internal error"], 1)
}

// No C library provides these; the compiler emits calls to them for array copies and
// initialisation.

/// # Safety
/// `dst` must be valid for `n` bytes of writes.
#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: within the n bytes the caller promised.
        unsafe { *dst.add(i) = c as u8 };
    }
    dst
}

/// # Safety
/// `dst` valid for `n` bytes of writes, `src` for `n` bytes of reads, not overlapping.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: within the n bytes the caller promised.
        unsafe { *dst.add(i) = *src.add(i) };
    }
    dst
}

/// # Safety
/// `a` and `b` valid for `n` bytes of reads.
#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: within the n bytes the caller promised.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// As for [`bcmp`].
#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded.
    unsafe { bcmp(a, b, n) }
}
