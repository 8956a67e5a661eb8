//! Generated seccomp programs kept on disk, so that a profile libseccomp has compiled
//! once is not compiled again by the next container that uses it.
//!
//! One JSON file per profile in a directory of the runtime's state root
//! (`<root>/.coracle-seccomp/`), named by a 64-bit FNV-1a hash of the profile's JSON.
//! The hash only names the file: an entry is used only when the profile stored in it
//! equals the requested one, and it was made by the same libseccomp version for the same
//! architecture; anything else (a collision, an upgrade, a damaged file) is compiled
//! afresh and the entry replaced. A directory not owned by this user, or writable by
//! others, is not trusted and not used.
//!
//! Only profiles that compiled are stored, so an entry never skips the profile's
//! validation: it was validated when it was made.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use serde::{Deserialize, Serialize};

use super::{compile, Filter, SeccompError, MAX_INSNS};

const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    libseccomp: String,
    arch: String,
    profile: serde_json::Value,
    flags: u32,
    skipped: Vec<String>,
    /// (code, jt, jf, k) per instruction.
    program: Vec<(u16, u8, u8, u32)>,
}

/// [`compile`], through the cache in `dir`. Cache trouble is never an error: the
/// profile is compiled, and the entry written when possible.
pub fn compile_cached(seccomp: &LinuxSeccomp, dir: &Path) -> Result<Filter, SeccompError> {
    let Ok(profile) = serde_json::to_value(seccomp) else {
        return compile(seccomp);
    };
    let path = entry_path(dir, &profile);
    if let Some(filter) = lookup(dir, &path, &profile) {
        tracing::debug!(path = %path.display(), "seccomp program from the cache");
        return Ok(filter);
    }
    let filter = compile(seccomp)?;
    if let Err(e) = store(dir, &path, profile, &filter) {
        tracing::debug!(path = %path.display(), error = %e, "seccomp cache not written");
    }
    Ok(filter)
}

fn entry_path(dir: &Path, profile: &serde_json::Value) -> PathBuf {
    // FNV-1a, 64 bits: a file name, not a proof of identity (see the module comment).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in profile.to_string().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    dir.join(format!("{hash:016x}.json"))
}

fn libseccomp_version() -> String {
    match libseccomp::ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "unknown".into(),
    }
}

/// The directory, when it is this user's and nobody else can write to it.
fn trusted(dir: &Path) -> bool {
    fs::symlink_metadata(dir).is_ok_and(|m| {
        m.is_dir() && m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o022 == 0
    })
}

fn lookup(dir: &Path, path: &Path, profile: &serde_json::Value) -> Option<Filter> {
    if !trusted(dir) {
        return None;
    }
    let entry: Entry = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    let usable = entry.format == FORMAT
        && entry.libseccomp == libseccomp_version()
        && entry.arch == std::env::consts::ARCH
        && &entry.profile == profile
        && (1..=MAX_INSNS).contains(&entry.program.len());
    if !usable {
        return None;
    }
    Some(Filter {
        program: entry
            .program
            .iter()
            .map(|&(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
            .collect(),
        flags: entry.flags,
        skipped: entry.skipped,
    })
}

/// Write the entry atomically: a temporary file in `dir`, then rename.
fn store(
    dir: &Path,
    path: &Path,
    profile: serde_json::Value,
    filter: &Filter,
) -> std::io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    if !trusted(dir) {
        return Err(std::io::Error::other(format!(
            "{} is not a directory of this user's that only it can write to",
            dir.display()
        )));
    }
    let entry = Entry {
        format: FORMAT,
        libseccomp: libseccomp_version(),
        arch: std::env::consts::ARCH.into(),
        profile,
        flags: filter.flags,
        skipped: filter.skipped.clone(),
        program: filter
            .program
            .iter()
            .map(|i| (i.code, i.jt, i.jf, i.k))
            .collect(),
    };
    let tmp = dir.join(format!(".tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec(&entry).map_err(std::io::Error::other)?)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(names: &[&str]) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{ "names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
        }))
        .unwrap()
    }

    fn program(f: &Filter) -> Vec<(u16, u8, u8, u32)> {
        f.program
            .iter()
            .map(|i| (i.code, i.jt, i.jf, i.k))
            .collect()
    }

    #[test]
    fn a_cached_program_equals_a_fresh_one_and_needs_the_same_profile() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let p = profile(&["mkdir", "no_such_syscall_coracle"]);
        let first = compile_cached(&p, &dir).unwrap();
        let files: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1, "one entry written");
        let cached = compile_cached(&p, &dir).unwrap();
        let fresh = compile(&p).unwrap();
        assert_eq!(program(&cached), program(&fresh));
        assert_eq!(cached.flags, FLAG_LOG_FOR_TESTS);
        assert_eq!(cached.skipped_syscalls(), ["no_such_syscall_coracle"]);
        assert_eq!(program(&first), program(&fresh));

        // Another profile whose entry is planted under the first one's name (a hash
        // collision) is not served the first one's program.
        let other = profile(&["rmdir"]);
        let other_path = entry_path(&dir, &serde_json::to_value(&other).unwrap());
        let first_path = entry_path(&dir, &serde_json::to_value(&p).unwrap());
        fs::copy(&first_path, &other_path).unwrap();
        let got = compile_cached(&other, &dir).unwrap();
        assert_eq!(program(&got), program(&compile(&other).unwrap()));
        assert_ne!(program(&got), program(&fresh));
    }

    #[test]
    fn damaged_entries_and_untrusted_directories_are_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let p = profile(&["mkdir"]);
        compile_cached(&p, &dir).unwrap();
        let path = entry_path(&dir, &serde_json::to_value(&p).unwrap());
        let mut entry: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        // An entry whose program was tampered with, from another libseccomp: ignored.
        entry["program"] = serde_json::json!([[6, 0, 0, 0x7fff0000u32]]);
        entry["libseccomp"] = serde_json::json!("0.0.1");
        fs::write(&path, entry.to_string()).unwrap();
        let got = compile_cached(&p, &dir).unwrap();
        assert_eq!(program(&got), program(&compile(&p).unwrap()));
        // Rewritten with a good entry.
        assert!(lookup(&dir, &path, &serde_json::to_value(&p).unwrap()).is_some());

        // Garbage: compiled afresh.
        fs::write(&path, b"{not json").unwrap();
        assert_eq!(
            program(&compile_cached(&p, &dir).unwrap()),
            program(&compile(&p).unwrap())
        );

        // A directory others can write to is not trusted, even with a good entry in it.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(lookup(&dir, &path, &serde_json::to_value(&p).unwrap()).is_none());
    }

    const FLAG_LOG_FOR_TESTS: u32 = super::super::FLAG_LOG;
}
