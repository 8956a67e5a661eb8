use std::fs;

use oci_spec::runtime::{LinuxNamespaceType, Mount as OciMount};
use tempfile::TempDir;

use super::*;
use crate::spec::config::{DeviceMapping, Mount, TmpfsOptions, Ulimit};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const HOST_BND: CapSet = CapSet(0x0000_01ff_feff_ffff);

fn rootfs() -> TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("etc")).unwrap();
    fs::write(
        d.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001::/home/web:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        d.path().join("etc/group"),
        "root:x:0:\nweb:x:1001:\nwheel:x:10:web\n",
    )
    .unwrap();
    d
}

fn ctx(root: &TempDir) -> SpecContext {
    let mut c = SpecContext::new(ID, root.path(), NetNamespace::Path("/run/netns/x".into()));
    c.bounding = HOST_BND;
    c.swap_accounting = true;
    c.host_dev = root.path().join("no-dev");
    c
}

fn cfg() -> ContainerConfig {
    let mut c = ContainerConfig::default();
    c.config.cmd = Some(vec!["sh".into()]);
    c
}

fn build(c: &ContainerConfig) -> Spec {
    let root = rootfs();
    build_spec(c, &ctx(&root)).unwrap()
}

fn caps_of(s: &Spec) -> Vec<String> {
    let c = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    let mut v: Vec<String> = c
        .effective()
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

fn mount_at<'a>(s: &'a Spec, dest: &str) -> Option<&'a OciMount> {
    s.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == std::path::Path::new(dest))
}

fn opts(m: &OciMount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

#[test]
fn docker_defaults() {
    let s = build(&cfg());
    assert_eq!(s.version(), OCI_VERSION);
    assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["sh"]);
    assert_eq!(p.cwd(), std::path::Path::new("/"));
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    assert!(!p.no_new_privileges().unwrap_or(false));
    let env = p.env().as_ref().unwrap();
    assert!(env.contains(&format!("PATH={DEFAULT_PATH}")));
    assert!(env.contains(&"HOSTNAME=0123456789ab".to_string()));
    assert!(env.contains(&"HOME=/root".to_string()));
    let want: Vec<String> = {
        let mut v = CapSet::docker_default().names();
        v.sort();
        v
    };
    assert_eq!(caps_of(&s), want);
    let linux = s.linux().as_ref().unwrap();
    let kinds: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert_eq!(
        kinds,
        [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Cgroup
        ]
    );
    let net = &linux.namespaces().as_ref().unwrap()[4];
    assert_eq!(
        net.path().as_deref(),
        Some(std::path::Path::new("/run/netns/x"))
    );
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(std::path::Path::new(&format!("/coracle/{ID}")))
    );
    assert!(linux
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/keys".to_string()));
    assert!(linux
        .readonly_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/sys".to_string()));
    assert!(linux.seccomp().is_some());
    assert!(!s.root().as_ref().unwrap().readonly().unwrap_or(false));
    // Default mounts.
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ] {
        assert!(mount_at(&s, d).is_some(), "{d}");
    }
    assert!(opts(mount_at(&s, "/sys").unwrap()).contains(&"ro".to_string()));
    assert!(opts(mount_at(&s, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
    assert!(opts(mount_at(&s, "/dev/shm").unwrap()).contains(&"size=65536k".to_string()));
    // Device rules: deny all first, no memory or cpu limits.
    let r = linux.resources().as_ref().unwrap();
    let devs = r.devices().as_ref().unwrap();
    assert!(!devs[0].allow() && devs[0].major().is_none());
    assert!(devs
        .iter()
        .any(|d| d.allow() && d.major() == Some(10) && d.minor() == Some(200)));
    assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none());
}

#[test]
fn cap_add_and_drop() {
    let mut c = cfg();
    c.host_config.cap_add = vec!["net_admin".into(), "CAP_SYS_TIME".into()];
    c.host_config.cap_drop = vec!["mknod".into(), "CAP_NET_RAW".into()];
    let caps = caps_of(&build(&c));
    assert!(caps.contains(&"CAP_NET_ADMIN".into()) && caps.contains(&"CAP_SYS_TIME".into()));
    assert!(!caps.contains(&"CAP_MKNOD".into()) && !caps.contains(&"CAP_NET_RAW".into()));
    let mut c = cfg();
    c.host_config.cap_drop = vec!["ALL".into()];
    c.host_config.cap_add = vec!["chown".into()];
    assert_eq!(caps_of(&build(&c)), ["CAP_CHOWN"]);
    let mut c = cfg();
    c.host_config.cap_add = vec!["sys_resource".into()];
    assert!(!caps_of(&build(&c)).contains(&"CAP_SYS_RESOURCE".into()));
    let mut c = cfg();
    c.host_config.cap_add = vec!["CAP_NOPE".into()];
    let root = rootfs();
    let e = build_spec(&c, &ctx(&root)).unwrap_err();
    assert_eq!(e.to_string(), "unknown capability: \"CAP_NOPE\"");
}

#[test]
fn privileged() {
    let mut c = cfg();
    c.host_config.privileged = true;
    let root = rootfs();
    let mut x = ctx(&root);
    x.host_dev = "/dev".into();
    let s = build_spec(&c, &x).unwrap();
    assert_eq!(caps_of(&s).len(), 40);
    assert!(!caps_of(&s).contains(&"CAP_SYS_RESOURCE".into()));
    let linux = s.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().as_ref().is_none_or(|m| m.is_empty()));
    assert!(linux.readonly_paths().as_ref().is_none_or(|m| m.is_empty()));
    assert!(!opts(mount_at(&s, "/sys").unwrap()).contains(&"ro".to_string()));
    assert!(!opts(mount_at(&s, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
    let devs = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(
        devs[0].allow() && devs[0].typ().is_none() && devs[0].access().as_deref() == Some("rwm")
    );
    // The host's devices (this machine has at least /dev/loop-control or a disk); the
    // ones the runtime makes itself are left out.
    let nodes = linux.devices().clone().unwrap_or_default();
    assert!(!nodes.is_empty());
    assert!(nodes
        .iter()
        .all(|d| d.path() != std::path::Path::new("/dev/null")));
}

#[test]
fn read_only_root_and_tmpfs() {
    let mut c = cfg();
    c.host_config.readonly_rootfs = true;
    c.host_config
        .tmpfs
        .insert("/run".into(), "size=64m,exec".into());
    c.host_config.mounts.push(Mount {
        kind: MountType::Tmpfs,
        target: "/cache".into(),
        tmpfs_options: Some(TmpfsOptions {
            size_bytes: 1 << 20,
            mode: 0o700,
        }),
        ..Default::default()
    });
    c.host_config.shm_size = 128 << 20;
    let s = build(&c);
    assert!(s.root().as_ref().unwrap().readonly().unwrap());
    let run = mount_at(&s, "/run").unwrap();
    assert_eq!(run.typ().as_deref(), Some("tmpfs"));
    assert_eq!(opts(run), ["nosuid", "nodev", "noexec", "size=64m", "exec"]);
    assert_eq!(
        opts(mount_at(&s, "/cache").unwrap()),
        ["nosuid", "nodev", "noexec", "size=1048576", "mode=700"]
    );
    assert!(opts(mount_at(&s, "/dev/shm").unwrap()).contains(&"size=131072k".to_string()));
}

#[test]
fn binds_files_and_order() {
    let root = rootfs();
    let mut x = ctx(&root);
    x.resolv_conf = Some("/var/lib/c/resolv.conf".into());
    x.hosts = Some("/var/lib/c/hosts".into());
    x.hostname_file = Some("/var/lib/c/hostname".into());
    x.mounts = vec![
        ResolvedMount {
            target: "/data/sub".into(),
            source: "/h/sub".into(),
            read_only: false,
            propagation: None,
        },
        ResolvedMount {
            target: "/data/".into(),
            source: "/h/data".into(),
            read_only: true,
            propagation: Some("rslave".into()),
        },
        ResolvedMount {
            target: "/dev/shm".into(),
            source: "/h/shm".into(),
            read_only: false,
            propagation: None,
        },
    ];
    let s = build_spec(&cfg(), &x).unwrap();
    let dests: Vec<String> = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect();
    let pos = |d: &str| dests.iter().position(|x| x == d).unwrap();
    assert!(pos("/data") < pos("/data/sub"));
    assert_eq!(
        dests.iter().filter(|d| *d == "/dev/shm").count(),
        1,
        "the user's /dev/shm replaces the default"
    );
    assert_eq!(
        opts(mount_at(&s, "/data").unwrap()),
        ["rbind", "rslave", "ro"]
    );
    assert_eq!(
        mount_at(&s, "/etc/hosts").unwrap().source().as_deref(),
        Some(std::path::Path::new("/var/lib/c/hosts"))
    );
    assert!(mount_at(&s, "/etc/resolv.conf").is_some() && mount_at(&s, "/etc/hostname").is_some());
    x.mounts.push(ResolvedMount {
        target: "/data".into(),
        source: "/x".into(),
        read_only: false,
        propagation: None,
    });
    assert_eq!(
        build_spec(&cfg(), &x).unwrap_err().to_string(),
        "Duplicate mount point: /data"
    );
}

#[test]
fn resources() {
    let mut c = cfg();
    c.host_config.memory = 64 << 20;
    c.host_config.memory_reservation = 32 << 20;
    c.host_config.nano_cpus = 1_500_000_000;
    c.host_config.cpu_shares = 512;
    c.host_config.cpuset_cpus = "0-1".into();
    c.host_config.pids_limit = Some(100);
    let s = build(&c);
    let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
    let m = r.memory().as_ref().unwrap();
    assert_eq!(
        (m.limit(), m.swap(), m.reservation()),
        (Some(64 << 20), Some(128 << 20), Some(32 << 20))
    );
    let cpu = r.cpu().as_ref().unwrap();
    assert_eq!(
        (cpu.quota(), cpu.period(), cpu.shares()),
        (Some(150_000), Some(100_000), Some(512))
    );
    assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
    assert_eq!(r.pids().as_ref().unwrap().limit(), 100);

    let mut c2 = c.clone();
    c2.host_config.memory_swap = -1;
    let s = build(&c2);
    assert_eq!(
        s.linux()
            .as_ref()
            .unwrap()
            .resources()
            .as_ref()
            .unwrap()
            .memory()
            .as_ref()
            .unwrap()
            .swap(),
        Some(-1)
    );
    // No swap accounting: no swap limit.
    let root = rootfs();
    let mut x = ctx(&root);
    x.swap_accounting = false;
    let s = build_spec(&c, &x).unwrap();
    assert_eq!(
        s.linux()
            .as_ref()
            .unwrap()
            .resources()
            .as_ref()
            .unwrap()
            .memory()
            .as_ref()
            .unwrap()
            .swap(),
        None
    );

    let err = |f: &dyn Fn(&mut ContainerConfig)| {
        let mut c = cfg();
        f(&mut c);
        let root = rootfs();
        build_spec(&c, &ctx(&root)).unwrap_err().to_string()
    };
    assert_eq!(
        err(&|c| c.host_config.memory = 1 << 20),
        "Minimum memory limit allowed is 6MB"
    );
    assert_eq!(
        err(&|c| c.host_config.memory_swap = 1 << 30),
        "You should always set the Memory limit when using Memoryswap limit, see usage"
    );
    assert_eq!(
        err(&|c| {
            c.host_config.memory = 64 << 20;
            c.host_config.memory_swap = 32 << 20;
        }),
        "Minimum memoryswap limit should be larger than memory limit, see usage"
    );
    assert_eq!(
        err(&|c| {
            c.host_config.memory = 64 << 20;
            c.host_config.memory_reservation = 128 << 20;
        }),
        "Minimum memory limit can not be less than memory reservation limit, see usage"
    );
    assert_eq!(
        err(&|c| {
            c.host_config.nano_cpus = 1_000_000_000;
            c.host_config.cpu_quota = 50_000;
        }),
        "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
    );
    assert_eq!(
        err(&|c| {
            c.host_config.nano_cpus = 1_000_000_000;
            c.host_config.cpu_period = 50_000;
        }),
        "Conflicting options: Nano CPUs and CPU Period cannot both be set"
    );
    assert_eq!(
        err(&|c| c.host_config.cpuset_cpus = "1-0".into()),
        "Invalid value 1-0 for cpuset cpus"
    );
    assert_eq!(
        err(&|c| c.host_config.oom_score_adj = 2000),
        "Invalid value 2000, range for oom score adj is [-1000, 1000]"
    );
}

#[test]
fn process_settings() {
    let mut c = cfg();
    c.config.entrypoint = Some(vec!["/bin/env".into()]);
    c.config.cmd = Some(vec!["-i".into()]);
    c.config.user = "web".into();
    c.config.working_dir = "/srv".into();
    c.config.tty = true;
    c.config.hostname = "box".into();
    c.config.domainname = "example.org".into();
    c.config.env = vec!["PATH=/mine".into(), "HOME=/h".into()];
    c.host_config.group_add = vec!["root".into(), "77".into()];
    c.host_config.ulimits = vec![
        Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048,
        },
        Ulimit {
            name: "core".into(),
            soft: -1,
            hard: -1,
        },
    ];
    c.host_config.oom_score_adj = 100;
    c.host_config.security_opt = vec!["no-new-privileges".into()];
    c.host_config
        .sysctls
        .insert("net.ipv4.ip_forward".into(), "1".into());
    let s = build(&c);
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["/bin/env", "-i"]);
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
    assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[10, 0, 77]);
    assert_eq!(p.cwd(), std::path::Path::new("/srv"));
    assert!(p.terminal().unwrap());
    assert!(p.no_new_privileges().unwrap());
    assert_eq!(p.oom_score_adj(), Some(100));
    let env = p.env().as_ref().unwrap();
    assert_eq!(
        env,
        &["PATH=/mine", "HOSTNAME=box", "TERM=xterm", "HOME=/h"]
    );
    let rl = p.rlimits().as_ref().unwrap();
    assert_eq!((rl[0].soft(), rl[0].hard()), (1024, 2048));
    assert_eq!(rl[1].hard(), u64::MAX);
    assert_eq!(s.hostname().as_deref(), Some("box"));
    assert_eq!(s.domainname().as_deref(), Some("example.org"));
    assert_eq!(
        s.linux().as_ref().unwrap().sysctl().as_ref().unwrap()["net.ipv4.ip_forward"],
        "1"
    );

    let mut c = cfg();
    c.config.user = "ghost".into();
    let root = rootfs();
    assert_eq!(
        build_spec(&c, &ctx(&root)).unwrap_err().to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
}

#[test]
fn network_modes_and_sysctls() {
    let root = rootfs();
    let mut x = ctx(&root);
    x.network = NetNamespace::Host;
    let s = build_spec(&cfg(), &x).unwrap();
    let ns = s.linux().as_ref().unwrap().namespaces().clone().unwrap();
    assert!(ns.iter().all(|n| n.typ() != LinuxNamespaceType::Network));
    let mut c = cfg();
    c.host_config
        .sysctls
        .insert("net.core.somaxconn".into(), "1".into());
    assert_eq!(
        build_spec(&c, &x).unwrap_err().to_string(),
        "sysctl \"net.core.somaxconn\": not allowed with the host's network namespace"
    );
    x.network = NetNamespace::New;
    let s = build_spec(&c, &x).unwrap();
    let ns = s.linux().as_ref().unwrap().namespaces().clone().unwrap();
    assert!(ns
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none()));
    let mut c = cfg();
    c.host_config
        .sysctls
        .insert("kernel.hostname".into(), "x".into());
    assert!(build_spec(&c, &x).is_err());
}

#[test]
fn seccomp_choices_and_init() {
    let mut c = cfg();
    c.host_config.security_opt = vec!["seccomp=unconfined".into()];
    assert!(build(&c).linux().as_ref().unwrap().seccomp().is_none());
    c.host_config.security_opt = vec![r#"seccomp={"defaultAction":"SCMP_ACT_LOG"}"#.into()];
    let s = build(&c);
    assert_eq!(
        s.linux()
            .as_ref()
            .unwrap()
            .seccomp()
            .as_ref()
            .unwrap()
            .default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActLog
    );

    let mut c = cfg();
    c.host_config.init = Some(true);
    let root = rootfs();
    let mut x = ctx(&root);
    assert!(matches!(build_spec(&c, &x), Err(SpecError::NoInitBinary)));
    x.init_binary = Some("/usr/libexec/coracle-init".into());
    let s = build_spec(&c, &x).unwrap();
    assert_eq!(
        s.process().as_ref().unwrap().args().as_ref().unwrap(),
        &[INIT_PATH, "--", "sh"]
    );
    assert!(opts(mount_at(&s, INIT_PATH).unwrap()).contains(&"ro".to_string()));

    let root = rootfs();
    assert!(matches!(
        build_spec(&ContainerConfig::default(), &ctx(&root)),
        Err(SpecError::NoCommand)
    ));
}

#[test]
fn devices_from_the_host() {
    let mut c = cfg();
    c.host_config.devices = vec![DeviceMapping {
        path_on_host: "/dev/null".into(),
        path_in_container: "/dev/mynull".into(),
        cgroup_permissions: "rw".into(),
    }];
    let s = build(&c);
    let linux = s.linux().as_ref().unwrap();
    let d = &linux.devices().as_ref().unwrap()[0];
    assert_eq!(
        (d.path().display().to_string(), d.major(), d.minor()),
        ("/dev/mynull".to_string(), 1, 3)
    );
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    let last = rules.last().unwrap();
    assert_eq!(
        (last.major(), last.minor(), last.access().as_deref()),
        (Some(1), Some(3), Some("rw"))
    );
    c.host_config.devices[0].path_on_host = "/etc/hostname".into();
    let root = rootfs();
    assert!(build_spec(&c, &ctx(&root))
        .unwrap_err()
        .to_string()
        .contains("not a device node"));
}

#[test]
fn spec_round_trips_through_json() {
    let s = build(&cfg());
    let text = serde_json::to_string(&s).unwrap();
    let back: Spec = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
}
