//! `build_spec` output run by the project's runtime: Docker's default security as seen from
//! inside a busybox container (see tests/common for the isolation).

mod common;

use coracle_engine::spec::caps::CapSet;
use coracle_engine::spec::oci_spec::runtime::Spec;
use coracle_engine::spec::{build_spec, ContainerConfig, NetNamespace, SpecContext};

use common::{status_field, Bundle, Output};

/// What the container reports about itself, one `key=value` per line.
const PROBE: &str = r#"
s=/proc/self/status
echo "capeff=$(grep '^CapEff:' $s | cut -f2)"
echo "capbnd=$(grep '^CapBnd:' $s | cut -f2)"
echo "seccomp=$(grep '^Seccomp:' $s | cut -f2)"
echo "nnp=$(grep '^NoNewPrivs:' $s | cut -f2)"
echo "hostname=$(hostname)"
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(id -G)"
echo "keys=$(cat /proc/keys 2>/dev/null | wc -c)"
echo "timer_list=$(cat /proc/timer_list 2>/dev/null | wc -c)"
if echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null; then echo procsys=rw; else echo procsys=ro; fi
if touch /probe-write 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi
echo "sysmount=$(awk '$2 == "/sys" { split($4, o, ","); print o[1] }' /proc/mounts)"
m=/sys/fs/cgroup/memory/memory.limit_in_bytes
[ -r $m ] || m=/sys/fs/cgroup/memory.max
echo "memlimit=$(cat $m 2>/dev/null)"
p=/sys/fs/cgroup/pids/pids.max
[ -r $p ] || p=/sys/fs/cgroup/pids.max
echo "pidsmax=$(cat $p 2>/dev/null)"
if unshare -n true 2>/dev/null; then echo unshare=ok; else echo unshare=denied; fi
"#;

struct Report(Output);

impl Report {
    #[track_caller]
    fn get(&self, key: &str) -> &str {
        self.0
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .unwrap_or_else(|| panic!("{key} not reported:\n{}", self.0))
    }
}

fn host_bounding() -> CapSet {
    coracle_engine::spec::caps::host_bounding_set().expect("CapBnd of this process")
}

/// Builds the spec for `cfg` (running PROBE) and runs it.
fn probe(b: &Bundle, mut cfg: ContainerConfig, adjust: impl FnOnce(&mut Spec)) -> Report {
    cfg.config.cmd = Some(vec!["sh".into(), "-c".into(), PROBE.into()]);
    let mut ctx = SpecContext::new(&b.id, b.rootfs(), NetNamespace::New);
    ctx.cgroups_path = b.cgroups_path();
    let mut spec = build_spec(&cfg, &ctx).expect("build_spec");
    adjust(&mut spec);
    let out = b.run(&spec);
    let out = out.expect_ok();
    eprintln!("container report:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    Report(out)
}

#[test]
fn docker_default_security() {
    if common::skip_unless_root() {
        return;
    }
    let b = Bundle::new();
    let mut cfg = ContainerConfig::default();
    cfg.host_config.memory = 64 << 20;
    cfg.host_config.pids_limit = Some(77);
    let r = probe(&b, cfg, |_| {});
    assert_eq!(r.get("capeff"), "00000000a80425fb", "Docker's default set");
    assert_eq!(r.get("capbnd"), "00000000a80425fb");
    assert_eq!(r.get("seccomp"), "2", "filter mode");
    assert_eq!(r.get("nnp"), "0");
    assert_eq!(r.get("hostname"), &b.id[..12]);
    assert_eq!(r.get("uid"), "0");
    assert_eq!(r.get("keys"), "0", "/proc/keys is masked");
    assert_eq!(r.get("timer_list"), "0", "/proc/timer_list is masked");
    assert_eq!(r.get("procsys"), "ro");
    assert_eq!(r.get("rootfs"), "rw");
    assert_eq!(r.get("sysmount"), "ro");
    assert_eq!(r.get("memlimit"), (64u64 << 20).to_string());
    assert_eq!(r.get("pidsmax"), "77");
    assert_eq!(r.get("unshare"), "denied");
}

#[test]
fn user_and_no_new_privileges() {
    if common::skip_unless_root() {
        return;
    }
    let b = Bundle::new();
    let mut cfg = ContainerConfig::default();
    cfg.config.user = "nobody".into();
    cfg.host_config.group_add = vec!["tty".into()];
    cfg.host_config.security_opt = vec!["no-new-privileges:true".into()];
    let r = probe(&b, cfg, |_| {});
    assert_eq!(r.get("uid"), "65534");
    assert_eq!(r.get("gid"), "65534");
    assert_eq!(r.get("groups"), "65534 5");
    assert_eq!(r.get("nnp"), "1");
    // A non-root process keeps the bounding set but execs with no effective capabilities.
    assert_eq!(r.get("capbnd"), "00000000a80425fb");
    assert_eq!(r.get("capeff"), "0000000000000000");
    assert_eq!(r.get("seccomp"), "2");
}

#[test]
fn read_only_root_cap_changes_and_unconfined() {
    if common::skip_unless_root() {
        return;
    }
    let b = Bundle::new();
    let mut cfg = ContainerConfig::default();
    cfg.config.hostname = "probe".into();
    cfg.host_config.readonly_rootfs = true;
    cfg.host_config.cap_drop = vec!["all".into()];
    cfg.host_config.cap_add = vec!["cap_kill".into(), "NET_ADMIN".into()];
    cfg.host_config.security_opt = vec!["seccomp=unconfined".into()];
    let r = probe(&b, cfg, |_| {});
    assert_eq!(r.get("rootfs"), "ro");
    assert_eq!(r.get("hostname"), "probe");
    assert_eq!(r.get("capeff"), format!("{:016x}", (1u64 << 5) | (1 << 12)));
    assert_eq!(r.get("seccomp"), "0");
}

#[test]
fn privileged_gets_the_bounding_set() {
    if common::skip_unless_root() {
        return;
    }
    let b = Bundle::new();
    let mut cfg = ContainerConfig::default();
    cfg.host_config.privileged = true;
    let r = probe(&b, cfg, |_| {});
    let bnd = host_bounding().intersect(CapSet::all());
    assert_eq!(r.get("capeff"), bnd.to_string());
    assert_eq!(r.get("seccomp"), "0");
    assert_ne!(r.get("timer_list"), "0", "nothing masked");
    assert_eq!(r.get("procsys"), "rw");
    assert_eq!(r.get("sysmount"), "rw");
    assert_eq!(r.get("unshare"), "ok");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(status_field(&status, "CapBnd").is_some());
}

#[test]
fn mounts_limits_sysctls_and_a_profile_file() {
    if common::skip_unless_root() {
        return;
    }
    let b = Bundle::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("file"), "from the host\n").unwrap();
    let profile = host.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let p = coracle_engine::spec::parse::parse_security_opt_flag(&format!(
        "seccomp={}",
        profile.display()
    ))
    .unwrap();

    let mut cfg = ContainerConfig::default();
    cfg.host_config.security_opt = vec![p];
    cfg.host_config.ulimits =
        vec![coracle_engine::spec::parse::parse_ulimit("nofile=1024:2048").unwrap()];
    let (k, v) = coracle_engine::spec::parse::parse_sysctl("kernel.shm_rmid_forced=1").unwrap();
    cfg.host_config.sysctls.insert(k, v);
    let (t, o) = coracle_engine::spec::parse::parse_tmpfs("/run:size=1m").unwrap();
    cfg.host_config.tmpfs.insert(t, o);
    cfg.host_config.shm_size = coracle_engine::spec::parse::parse_size("32m").unwrap();
    cfg.host_config.nano_cpus = coracle_engine::spec::parse::parse_cpus("0.5").unwrap();
    cfg.config.cmd = Some(vec![
        "sh".into(),
        "-c".into(),
        r#"
        echo "nofile=$(ulimit -n)"
        echo "sysctl=$(cat /proc/sys/kernel/shm_rmid_forced)"
        echo "run=$(awk '$2 == "/run" { print $1 " " $4 }' /proc/mounts)"
        echo "shm=$(awk '$2 == "/dev/shm" { print $4 }' /proc/mounts)"
        echo "data=$(cat /data/file)"
        if touch /data/new 2>/dev/null; then echo dataw=rw; else echo dataw=ro; fi
        if mkdir /tmp/x 2>/dev/null; then echo mkdir=ok; else echo mkdir=denied; fi
        q=/sys/fs/cgroup/cpu/cpu.cfs_quota_us
        if [ -r $q ]; then echo "quota=$(cat $q)"; else echo "quota=$(cut -d' ' -f1 /sys/fs/cgroup/cpu.max)"; fi
        "#
        .into(),
    ]);
    let mut ctx = SpecContext::new(&b.id, b.rootfs(), NetNamespace::New);
    ctx.cgroups_path = b.cgroups_path();
    ctx.mounts = vec![coracle_engine::spec::ResolvedMount {
        target: "/data".into(),
        source: host.path().to_path_buf(),
        read_only: true,
        propagation: None,
    }];
    let spec = build_spec(&cfg, &ctx).expect("build_spec");
    let r = Report(b.run(&spec).expect_ok());
    eprintln!("container report:\n{}", r.0.stdout);
    assert_eq!(r.get("nofile"), "1024");
    assert_eq!(r.get("sysctl"), "1");
    assert!(r.get("run").starts_with("tmpfs "), "{}", r.get("run"));
    assert!(r.get("run").contains("size=1024k"), "{}", r.get("run"));
    assert!(r.get("run").contains("noexec"), "{}", r.get("run"));
    assert!(r.get("shm").contains("size=32768k"), "{}", r.get("shm"));
    assert_eq!(r.get("data"), "from the host");
    assert_eq!(r.get("dataw"), "ro");
    assert_eq!(r.get("mkdir"), "denied", "the profile file's rule");
    assert_eq!(r.get("quota"), "50000");
    assert!(!host.path().join("new").exists());
}

#[test]
fn sys_admin_opens_namespace_calls_in_the_default_profile() {
    if common::skip_unless_root() {
        return;
    }
    let b = Bundle::new();
    let mut cfg = ContainerConfig::default();
    cfg.host_config.cap_add = vec!["SYS_ADMIN".into()];
    let r = probe(&b, cfg, |_| {});
    assert_eq!(r.get("seccomp"), "2");
    assert_eq!(
        r.get("unshare"),
        "ok",
        "clone/unshare with namespace flags under CAP_SYS_ADMIN"
    );
}
