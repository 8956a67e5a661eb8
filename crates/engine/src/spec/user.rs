//! `--user` and `--group-add` resolved against the container's own `/etc/passwd` and
//! `/etc/group`, read from the rootfs without trusting it: every path component is
//! resolved inside the rootfs (an absolute symlink or `..` cannot leave it), the final
//! open does not follow symlinks, and only regular files up to 4 MiB are read.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use super::SpecError;

const MAX_SYMLINKS: usize = 40;
const MAX_FILE: u64 = 4 << 20;

/// `path` (absolute, as seen inside the container) resolved to a host path under `root`,
/// following symlinks as the container would see them. `None` when a component is missing.
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<Option<PathBuf>, SpecError> {
    let io = |p: &Path, source| SpecError::Io {
        what: "resolve a path in the rootfs",
        path: p.to_path_buf(),
        source,
    };
    // Components still to walk, last first.
    let mut todo: Vec<OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            done.pop();
            continue;
        }
        let mut host = root.to_path_buf();
        host.extend(&done);
        host.push(&name);
        let meta = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&host, e)),
        };
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(io(&host, std::io::Error::from_raw_os_error(libc::ELOOP)));
            }
            let target = fs::read_link(&host).map_err(|e| io(&host, e))?;
            if target.as_os_str().as_bytes().starts_with(b"/") {
                done.clear();
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(n) => todo.push(n.to_os_string()),
                    Component::ParentDir => todo.push("..".into()),
                    _ => {}
                }
            }
        } else {
            done.push(name);
        }
    }
    let mut host = root.to_path_buf();
    host.extend(&done);
    Ok(Some(host))
}

/// The text of a file inside the rootfs (`None` when it does not exist).
pub fn read_in_root(root: &Path, path: &str) -> Result<Option<String>, SpecError> {
    let Some(host) = resolve_in_root(root, Path::new(path))? else {
        return Ok(None);
    };
    let io = |source| SpecError::Io {
        what: "read an account database",
        path: host.clone(),
        source,
    };
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&host)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if !file.metadata().map_err(io)?.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE).read_to_end(&mut bytes).map_err(io)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// `/etc/passwd` lines (`name:x:uid:gid:gecos:home:shell`); malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// `/etc/group` lines (`name:x:gid:member,member`).
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The process identity a `--user` value gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The user's home directory from passwd (`/` when unknown).
    pub home: String,
}

/// Resolves `user` (`""`, `name`, `uid`, with an optional `:group`/`:gid`) and `group_add`
/// against the account databases' texts.
pub fn resolve_identity(
    user: &str,
    group_add: &[String],
    passwd: &[PasswdEntry],
    groups: &[GroupEntry],
) -> Result<Identity, SpecError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = match u.parse::<u32>() {
        Ok(uid) => passwd
            .iter()
            .find(|p| p.uid == uid)
            .cloned()
            .or(Some(PasswdEntry {
                name: String::new(),
                uid,
                gid: 0,
                home: "/".into(),
            })),
        Err(_) => passwd.iter().find(|p| p.name == u).cloned(),
    }
    .ok_or_else(|| {
        SpecError::User(format!(
            "unable to find user {u}: no matching entries in passwd file"
        ))
    })?;
    let find_group = |g: &str| -> Result<u32, SpecError> {
        match g.parse::<u32>() {
            Ok(gid) => Ok(gid),
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| {
                    SpecError::User(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                }),
        }
    };
    let gid = match g {
        Some(g) if !g.is_empty() => find_group(g)?,
        _ => entry.gid,
    };
    let mut additional = Vec::new();
    // A user's supplementary groups come with the user name, not with an explicit group.
    if g.is_none() && !entry.name.is_empty() {
        for e in groups {
            if e.members.contains(&entry.name) && e.gid != gid {
                additional.push(e.gid);
            }
        }
    }
    for extra in group_add {
        let gid = find_group(extra)?;
        if !additional.contains(&gid) {
            additional.push(gid);
        }
    }
    Ok(Identity {
        uid: entry.uid,
        gid,
        additional_gids: additional,
        home: if entry.home.is_empty() {
            "/".into()
        } else {
            entry.home
        },
    })
}

/// [`resolve_identity`] with the databases read from `rootfs` (missing files are empty).
pub fn resolve_in_rootfs(
    rootfs: &Path,
    user: &str,
    group_add: &[String],
) -> Result<Identity, SpecError> {
    let passwd = parse_passwd(&read_in_root(rootfs, "/etc/passwd")?.unwrap_or_default());
    let groups = parse_group(&read_in_root(rootfs, "/etc/group")?.unwrap_or_default());
    resolve_identity(user, group_add, &passwd, &groups)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# c\nweb:x:1000:1000::/home/web:/bin/sh\nbroken\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\nweb:x:1000:\nadm:x:4:web,other\nstaff:x:50:web\n";

    fn resolve(user: &str, add: &[&str]) -> Result<Identity, SpecError> {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve_identity(user, &add, &parse_passwd(PASSWD), &parse_group(GROUP))
    }

    #[test]
    fn names_and_numbers() {
        let id = resolve("", &[]).unwrap();
        assert_eq!((id.uid, id.gid, id.home.as_str()), (0, 0, "/root"));
        let id = resolve("web", &[]).unwrap();
        assert_eq!((id.uid, id.gid), (1000, 1000));
        assert_eq!(id.additional_gids, [4, 50]);
        let id = resolve("web:adm", &[]).unwrap();
        assert_eq!((id.uid, id.gid), (1000, 4));
        assert!(id.additional_gids.is_empty());
        let id = resolve("1234:5678", &["staff", "9"]).unwrap();
        assert_eq!(
            (id.uid, id.gid, id.additional_gids),
            (1234, 5678, vec![50, 9])
        );
        let id = resolve("1000", &[]).unwrap();
        assert_eq!(
            (id.uid, id.gid, id.home.as_str()),
            (1000, 1000, "/home/web")
        );
    }

    #[test]
    fn unknown_names() {
        assert_eq!(
            resolve("ghost", &[]).unwrap_err().to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            resolve("web:ghosts", &[]).unwrap_err().to_string(),
            "unable to find group ghosts: no matching entries in group file"
        );
        assert!(resolve("0", &["nope"]).is_err());
    }

    #[test]
    fn symlinks_stay_in_the_rootfs() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::create_dir_all(root.path().join("real")).unwrap();
        fs::write(root.path().join("real/passwd"), PASSWD).unwrap();
        // An absolute link resolves inside the rootfs, not on the host.
        symlink(
            outside.path().join("passwd"),
            root.path().join("etc/passwd"),
        )
        .unwrap();
        assert_eq!(read_in_root(root.path(), "/etc/passwd").unwrap(), None);
        fs::remove_file(root.path().join("etc/passwd")).unwrap();
        symlink("../../../../../real/passwd", root.path().join("etc/passwd")).unwrap();
        assert_eq!(
            read_in_root(root.path(), "/etc/passwd").unwrap().as_deref(),
            Some(PASSWD)
        );
        let id = resolve_in_rootfs(root.path(), "web", &[]).unwrap();
        assert_eq!(id.uid, 1000);
        // A loop is an error, not a hang.
        fs::remove_file(root.path().join("etc/passwd")).unwrap();
        symlink("/etc/passwd", root.path().join("etc/passwd")).unwrap();
        assert!(read_in_root(root.path(), "/etc/passwd").is_err());
        // No databases at all: numeric ids still work.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(resolve_in_rootfs(empty.path(), "5:6", &[]).unwrap().uid, 5);
        assert!(resolve_in_rootfs(empty.path(), "web", &[]).is_err());
    }
}
