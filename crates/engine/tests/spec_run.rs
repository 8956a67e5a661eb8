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
    eprintln!("container report:\n{}", out.stdout);
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
