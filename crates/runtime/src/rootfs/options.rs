//! Pure parsing of fstab-style mount options (`"ro"`, `"nosuid"`, `"rbind"`,
//! `"rslave"`, `"mode=755"`, ...) into what the mount calls need.
//!
//! No kernel calls here: everything is unit-tested.

use nix::mount::MsFlags;

/// A mount entry's options, split by how they reach the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call itself (MS_RDONLY, MS_NOSUID, ..., and MS_BIND|MS_REC
    /// for `rbind`).
    pub flags: MsFlags,
    /// Propagation changes (MS_SHARED, MS_SLAVE|MS_REC, ...), in the order given.
    /// The kernel ignores them when combined with other flags, so each one is a
    /// separate mount call after the mount exists.
    pub propagation: Vec<MsFlags>,
    /// Everything the kernel does not take as a flag, comma-joined, for the
    /// file system (`mode=755,size=65536k`).
    pub data: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
        }
    }
}

impl MountOptions {
    /// `bind` or `rbind` was given.
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// `rbind` was given.
    pub fn is_recursive(&self) -> bool {
        self.flags.contains(MsFlags::MS_REC)
    }

    /// The flags that a bind mount ignores on its first call and that must be applied
    /// by a second `MS_REMOUNT|MS_BIND` call (ro, nosuid, nodev, noexec, atime flags).
    pub fn remount_flags(&self) -> MsFlags {
        self.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC)
    }

    /// The data string, or `None` when empty.
    pub fn data(&self) -> Option<&str> {
        if self.data.is_empty() {
            None
        } else {
            Some(&self.data)
        }
    }
}

/// What one option word does.
enum Opt {
    Set(MsFlags),
    Clear(MsFlags),
    Propagation(MsFlags),
    /// Accepted and ignored (`defaults`, or flags with no kernel meaning here).
    Ignore,
}

fn classify(word: &str) -> Option<Opt> {
    use MsFlags as F;
    let opt = match word {
        "defaults" => Opt::Ignore,
        "ro" => Opt::Set(F::MS_RDONLY),
        "rw" => Opt::Clear(F::MS_RDONLY),
        "nosuid" => Opt::Set(F::MS_NOSUID),
        "suid" => Opt::Clear(F::MS_NOSUID),
        "nodev" => Opt::Set(F::MS_NODEV),
        "dev" => Opt::Clear(F::MS_NODEV),
        "noexec" => Opt::Set(F::MS_NOEXEC),
        "exec" => Opt::Clear(F::MS_NOEXEC),
        "sync" => Opt::Set(F::MS_SYNCHRONOUS),
        "async" => Opt::Clear(F::MS_SYNCHRONOUS),
        "dirsync" => Opt::Set(F::MS_DIRSYNC),
        "remount" => Opt::Set(F::MS_REMOUNT),
        "mand" => Opt::Set(F::MS_MANDLOCK),
        "nomand" => Opt::Clear(F::MS_MANDLOCK),
        "atime" => Opt::Clear(F::MS_NOATIME),
        "noatime" => Opt::Set(F::MS_NOATIME),
        "diratime" => Opt::Clear(F::MS_NODIRATIME),
        "nodiratime" => Opt::Set(F::MS_NODIRATIME),
        "relatime" => Opt::Set(F::MS_RELATIME),
        "norelatime" => Opt::Clear(F::MS_RELATIME),
        "strictatime" => Opt::Set(F::MS_STRICTATIME),
        "nostrictatime" => Opt::Clear(F::MS_STRICTATIME),
        "bind" => Opt::Set(F::MS_BIND),
        "rbind" => Opt::Set(F::MS_BIND | F::MS_REC),
        "shared" => Opt::Propagation(F::MS_SHARED),
        "rshared" => Opt::Propagation(F::MS_SHARED | F::MS_REC),
        "slave" => Opt::Propagation(F::MS_SLAVE),
        "rslave" => Opt::Propagation(F::MS_SLAVE | F::MS_REC),
        "private" => Opt::Propagation(F::MS_PRIVATE),
        "rprivate" => Opt::Propagation(F::MS_PRIVATE | F::MS_REC),
        "unbindable" => Opt::Propagation(F::MS_UNBINDABLE),
        "runbindable" => Opt::Propagation(F::MS_UNBINDABLE | F::MS_REC),
        // ID-mapped mounts are not supported yet; the option must not reach the
        // file system as data (it would reject it), so it is dropped here and the
        // caller decides whether uid/gid mappings on the mount are an error.
        "idmap" | "ridmap" => Opt::Ignore,
        _ => return None,
    };
    Some(opt)
}

/// Parse mount options in order; later words override earlier ones (`ro,rw` is rw).
/// Unknown words are file-system data, as mount(8) treats them.
pub fn parse_options<S: AsRef<str>>(options: &[S]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data: Vec<&str> = Vec::new();
    for word in options.iter().map(AsRef::as_ref) {
        let word = word.trim();
        if word.is_empty() {
            continue;
        }
        match classify(word) {
            Some(Opt::Set(f)) => out.flags.insert(f),
            Some(Opt::Clear(f)) => out.flags.remove(f),
            Some(Opt::Propagation(f)) => out.propagation.push(f),
            Some(Opt::Ignore) => {}
            None => data.push(word),
        }
    }
    out.data = data.join(",");
    out
}

/// Parse one propagation word (`linux.rootfsPropagation`): `None` for an unknown word.
pub fn parse_propagation(word: &str) -> Option<MsFlags> {
    match classify(word) {
        Some(Opt::Propagation(f)) => Some(f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_propagation_and_data_are_split() {
        let o = parse_options(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data(), Some("mode=755,size=65536k"));
        assert!(!o.is_bind());
    }

    #[test]
    fn devpts_options_keep_data_in_order() {
        let o = parse_options(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(o.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    }

    #[test]
    fn later_words_override_earlier_ones() {
        let o = parse_options(&["ro", "rw", "nodev", "dev", "noexec"]);
        assert_eq!(o.flags, MsFlags::MS_NOEXEC);
        let o = parse_options(&["rw", "ro"]);
        assert_eq!(o.flags, MsFlags::MS_RDONLY);
    }

    #[test]
    fn bind_and_rbind() {
        let o = parse_options(&["bind", "ro"]);
        assert!(o.is_bind() && !o.is_recursive());
        assert_eq!(o.remount_flags(), MsFlags::MS_RDONLY);
        let o = parse_options(&["rbind", "nosuid", "private"]);
        assert!(o.is_bind() && o.is_recursive());
        assert_eq!(o.remount_flags(), MsFlags::MS_NOSUID);
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE]);
        assert_eq!(o.data(), None);
    }

    #[test]
    fn every_propagation_word() {
        use MsFlags as F;
        let words = [
            ("shared", F::MS_SHARED),
            ("rshared", F::MS_SHARED | F::MS_REC),
            ("slave", F::MS_SLAVE),
            ("rslave", F::MS_SLAVE | F::MS_REC),
            ("private", F::MS_PRIVATE),
            ("rprivate", F::MS_PRIVATE | F::MS_REC),
            ("unbindable", F::MS_UNBINDABLE),
            ("runbindable", F::MS_UNBINDABLE | F::MS_REC),
        ];
        for (w, f) in words {
            assert_eq!(parse_propagation(w), Some(f), "{w}");
            assert_eq!(parse_options(&[w]).propagation, vec![f], "{w}");
        }
        assert_eq!(parse_propagation("ro"), None);
        assert_eq!(parse_propagation("bogus"), None);
    }

    #[test]
    fn empty_defaults_and_idmap_are_dropped() {
        let o = parse_options(&["", " defaults ", "idmap"]);
        assert_eq!(o, MountOptions::default());
        let none: [&str; 0] = [];
        assert_eq!(parse_options(&none), MountOptions::default());
    }
}
