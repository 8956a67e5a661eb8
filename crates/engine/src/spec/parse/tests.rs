use super::*;
use crate::spec::config::MountType;

fn msg<T: std::fmt::Debug>(r: Result<T, ParseError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn sizes() {
    assert_eq!(parse_size("512m").unwrap(), 512 << 20);
    assert_eq!(parse_size("1g").unwrap(), 1 << 30);
    assert_eq!(parse_size("1G").unwrap(), 1 << 30);
    assert_eq!(parse_size("100k").unwrap(), 100 << 10);
    assert_eq!(parse_size("100KiB").unwrap(), 100 << 10);
    assert_eq!(parse_size("64mb").unwrap(), 64 << 20);
    assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert_eq!(parse_size("10b").unwrap(), 10);
    for bad in ["", "x", "5x", "-1", "1..5m", ".5m", "m", "1mm", "12 gx"] {
        assert_eq!(
            msg(parse_size(bad)),
            format!("invalid size: '{bad}'"),
            "{bad}"
        );
    }
    assert_eq!(parse_memory_swap("-1").unwrap(), -1);
    assert_eq!(parse_memory_swap("1g").unwrap(), 1 << 30);
}

#[test]
fn cpus() {
    assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
    assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
    assert_eq!(parse_cpus("0.01").unwrap(), 10_000_000);
    assert_eq!(parse_cpus(".5").unwrap(), 500_000_000);
    assert_eq!(parse_cpus("0.0000000010").unwrap(), 1);
    assert_eq!(
        msg(parse_cpus("one")),
        "failed to parse one as a rational number"
    );
    assert_eq!(msg(parse_cpus("")), "failed to parse  as a rational number");
    assert_eq!(msg(parse_cpus("0.0000000001")), "value is too precise");
}

#[test]
fn ulimits() {
    let u = parse_ulimit("nofile=1024:2048").unwrap();
    assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
    let u = parse_ulimit("nproc=64").unwrap();
    assert_eq!((u.soft, u.hard), (64, 64));
    assert_eq!(parse_ulimit("core=-1").unwrap().hard, -1);
    assert_eq!(
        msg(parse_ulimit("nofile")),
        "invalid ulimit argument: nofile"
    );
    assert_eq!(msg(parse_ulimit("files=1")), "invalid ulimit type: files");
    assert_eq!(
        msg(parse_ulimit("nofile=2048:1024")),
        "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"
    );
    assert_eq!(
        msg(parse_ulimit("nofile=1:2:3")),
        "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"
    );
    assert!(parse_ulimit("nofile=x").is_err());
}

#[test]
fn env_values_and_files() {
    let lookup = |k: &str| (k == "HOME_DIR").then(|| "/home/me".to_string());
    assert_eq!(parse_env("A=1", lookup).unwrap(), "A=1");
    assert_eq!(parse_env("A=", lookup).unwrap(), "A=");
    assert_eq!(parse_env("A=b=c", lookup).unwrap(), "A=b=c");
    assert_eq!(parse_env("HOME_DIR", lookup).unwrap(), "HOME_DIR=/home/me");
    assert_eq!(parse_env("UNSET", lookup).unwrap(), "UNSET");
    assert_eq!(
        msg(parse_env("=x", lookup)),
        "invalid environment variable: =x"
    );

    let text = "# a comment\n\nA=1\n  B=two words\nHOME_DIR\nUNSET\n   # indented comment\nC=\n";
    assert_eq!(
        parse_env_file_text(text, lookup).unwrap(),
        ["A=1", "B=two words", "HOME_DIR=/home/me", "C="]
    );
    assert_eq!(
        msg(parse_env_file_text("A B=1\n", lookup)),
        "poorly formatted environment: variable 'A B' contains whitespaces"
    );
    assert_eq!(
        msg(parse_env_file_text("=1\n", lookup)),
        "no variable name on line '=1'"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("env");
    std::fs::write(&f, "X=1\r\n").unwrap();
    assert_eq!(parse_env_file(&f, lookup).unwrap(), ["X=1"]);
    std::fs::write(&f, b"X=1\nY=\xff\n").unwrap();
    assert_eq!(
        msg(parse_env_file(&f, lookup)),
        format!(
            "env file {} contains invalid utf8 bytes at line 2",
            f.display()
        )
    );
    assert!(parse_env_file(&dir.path().join("nope"), lookup).is_err());
}

#[test]
fn volumes() {
    let v = parse_volume("/host:/data:ro").unwrap();
    assert_eq!(v.kind, MountType::Bind);
    assert_eq!(v.source.as_deref(), Some("/host"));
    assert!(v.read_only);
    let v = parse_volume("cache:/var/cache:rw,nocopy").unwrap();
    assert_eq!(v.kind, MountType::Volume);
    assert!(!v.read_only && v.no_copy);
    let v = parse_volume("/data").unwrap();
    assert_eq!((v.kind, v.source), (MountType::Volume, None));
    let v = parse_volume("/a:/b:rslave").unwrap();
    assert_eq!(v.propagation.as_deref(), Some("rslave"));
    assert_eq!(msg(parse_volume("/a:/b:xx")), "invalid mode: xx");
    assert_eq!(msg(parse_volume("/a:/b:ro,rw")), "invalid mode: ro,rw");
    assert_eq!(
        msg(parse_volume("/data:ro")),
        "invalid volume specification: '/data:ro'"
    );
    assert_eq!(
        msg(parse_volume("a:b:c:d")),
        "invalid volume specification: 'a:b:c:d'"
    );
    assert_eq!(msg(parse_volume("")), "invalid volume specification: ''");
    assert_eq!(
        msg(parse_volume("/a:rel")),
        "invalid volume specification: '/a:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
    );
    assert_eq!(
        msg(parse_volume("vol:/")),
        "invalid volume specification: 'vol:/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
    );
    assert!(
        msg(parse_volume("a$b:/x")).starts_with("create a$b: \"a$b\" includes invalid characters")
    );
    assert_eq!(msg(parse_volume("/a:/b:nocopy")), "invalid mode: nocopy");
    let m = volume_spec_to_mount(&parse_volume("/a:/b:ro").unwrap());
    assert_eq!(
        (m.kind, m.source.as_str(), m.read_only),
        (MountType::Bind, "/a", true)
    );
}

#[test]
fn mounts() {
    let m = parse_mount("type=bind,source=/src,target=/dst,readonly").unwrap();
    assert_eq!(
        (m.kind, m.source.as_str(), m.target.as_str(), m.read_only),
        (MountType::Bind, "/src", "/dst", true)
    );
    let m = parse_mount("type=volume,src=data,dst=/data,ro=false,volume-nocopy").unwrap();
    assert!(!m.read_only);
    assert!(m.volume_options.unwrap().no_copy);
    let m = parse_mount("target=/anon").unwrap();
    assert_eq!(m.kind, MountType::Volume);
    let m = parse_mount("type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
    let t = m.tmpfs_options.unwrap();
    assert_eq!((t.size_bytes, t.mode), (64 << 20, 0o1770));
    let m = parse_mount("type=bind,source=/a,target=/b,bind-propagation=rshared").unwrap();
    assert_eq!(
        m.bind_options.unwrap().propagation.as_deref(),
        Some("rshared")
    );

    assert_eq!(
        msg(parse_mount("type=bind,source=/a")),
        "target is required"
    );
    assert_eq!(
        msg(parse_mount("type=bind,source=/a,target=/b,foo=1")),
        "unexpected key 'foo' in 'type=bind,source=/a,target=/b,foo=1'"
    );
    assert_eq!(
        msg(parse_mount("type,target=/b")),
        "invalid field 'type' must be a key=value pair"
    );
    assert_eq!(
        msg(parse_mount("type=bind,target=/b,readonly=maybe")),
        "invalid value for readonly: maybe"
    );
    assert_eq!(
        msg(parse_mount("type=nfs,target=/b")),
        "invalid value for type: nfs"
    );
    assert_eq!(
        msg(parse_mount("type=tmpfs,target=/b,tmpfs-size=big")),
        "invalid value for tmpfs-size: big"
    );
    assert_eq!(
        msg(parse_mount("type=bind,target=/b")),
        "invalid mount config for type \"bind\": field Source must not be empty"
    );
    assert_eq!(
        msg(parse_mount("type=bind,source=rel,target=/b")),
        "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
    );
    assert_eq!(
        msg(parse_mount("type=tmpfs,source=x,target=/b")),
        "invalid mount config for type \"tmpfs\": field Source must not be specified"
    );
    assert_eq!(
        msg(parse_mount("type=volume,target=/b,tmpfs-size=1m")),
        "invalid mount config for type \"volume\": field TmpfsOptions must not be specified"
    );
}

#[test]
fn tmpfs_flags() {
    assert_eq!(
        parse_tmpfs("/run:size=64m").unwrap(),
        ("/run".to_string(), "size=64m".to_string())
    );
    assert_eq!(parse_tmpfs("/tmp").unwrap().1, "");
    assert_eq!(
        parse_tmpfs("/x:rw,exec,mode=1777,uid=1000").unwrap().1,
        "rw,exec,mode=1777,uid=1000"
    );
    assert_eq!(
        msg(parse_tmpfs("run:size=1m")),
        "invalid mount path: 'run' mount path must be absolute"
    );
    assert_eq!(
        msg(parse_tmpfs("/run:bogus")),
        "invalid tmpfs option \"bogus\""
    );
    assert_eq!(
        msg(parse_tmpfs("/run:size=lots")),
        "invalid tmpfs option \"size=lots\""
    );
}

#[test]
fn devices() {
    let d = parse_device("/dev/fuse").unwrap();
    assert_eq!(
        (
            d.path_on_host.as_str(),
            d.path_in_container.as_str(),
            d.cgroup_permissions.as_str()
        ),
        ("/dev/fuse", "/dev/fuse", "rwm")
    );
    let d = parse_device("/dev/sda:r").unwrap();
    assert_eq!(
        (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
        ("/dev/sda", "r")
    );
    let d = parse_device("/dev/sda:/dev/xvda:rw").unwrap();
    assert_eq!(
        (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
        ("/dev/xvda", "rw")
    );
    assert_eq!(
        msg(parse_device("/dev/sda:/dev/xvda:rwx")),
        "invalid device specification: /dev/sda:/dev/xvda:rwx"
    );
    assert_eq!(
        msg(parse_device("a:b:c:d")),
        "invalid device specification: a:b:c:d"
    );
    assert_eq!(msg(parse_device("sda")), "sda is not an absolute path");
    assert_eq!(
        msg(parse_device("/dev/sda:xvda")),
        "xvda is not an absolute path"
    );
}

#[test]
fn restart_policies() {
    assert_eq!(parse_restart("no").unwrap().name, "no");
    assert_eq!(parse_restart("always").unwrap().name, "always");
    assert_eq!(
        parse_restart("unless-stopped").unwrap().name,
        "unless-stopped"
    );
    let p = parse_restart("on-failure:5").unwrap();
    assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 5));
    assert_eq!(parse_restart("on-failure").unwrap().maximum_retry_count, 0);
    assert_eq!(
        msg(parse_restart(":3")),
        "invalid restart policy format: no policy provided before colon"
    );
    assert_eq!(
        msg(parse_restart("on-failure:x")),
        "invalid restart policy format: maximum retry count must be an integer"
    );
    assert_eq!(
        msg(parse_restart("always:3")),
        "invalid restart policy: maximum retry count can only be used with 'on-failure'"
    );
    assert_eq!(
        msg(parse_restart("on-failure:-1")),
        "invalid restart policy: maximum retry count cannot be negative"
    );
    assert_eq!(
        msg(parse_restart("sometimes")),
        "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
    );
}

#[test]
fn add_hosts() {
    assert_eq!(parse_add_host("db:10.0.0.2").unwrap(), "db:10.0.0.2");
    assert_eq!(parse_add_host("db=10.0.0.2").unwrap(), "db:10.0.0.2");
    assert_eq!(parse_add_host("v6:::1").unwrap(), "v6:::1");
    assert_eq!(parse_add_host("v6=[::1]").unwrap(), "v6:::1");
    assert_eq!(
        parse_add_host("gw:host-gateway").unwrap(),
        "gw:host-gateway"
    );
    assert_eq!(msg(parse_add_host("db")), "bad format for add-host: \"db\"");
    assert_eq!(
        msg(parse_add_host(":1.2.3.4")),
        "bad format for add-host: \":1.2.3.4\""
    );
    assert_eq!(
        msg(parse_add_host("db:300.1.1.1")),
        "invalid IP address in add-host: \"300.1.1.1\""
    );
}

#[test]
fn security_opts() {
    let o = |v: &[&str]| security_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert!(!o(&[]).unwrap().no_new_privileges);
    assert!(o(&["no-new-privileges"]).unwrap().no_new_privileges);
    assert!(o(&["no-new-privileges:true"]).unwrap().no_new_privileges);
    assert!(o(&["no-new-privileges=true"]).unwrap().no_new_privileges);
    assert!(!o(&["no-new-privileges:false"]).unwrap().no_new_privileges);
    assert_eq!(o(&[]).unwrap().seccomp, SeccompChoice::Default);
    assert_eq!(
        o(&["seccomp=unconfined"]).unwrap().seccomp,
        SeccompChoice::Unconfined
    );
    assert_eq!(
        o(&["seccomp:unconfined"]).unwrap().seccomp,
        SeccompChoice::Unconfined
    );
    assert!(matches!(
        o(&["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"])
            .unwrap()
            .seccomp,
        SeccompChoice::Profile(_)
    ));
    assert_eq!(msg(o(&["bogus"])), "invalid --security-opt: \"bogus\"");
    assert_eq!(
        msg(o(&["no-new-privileges:maybe"])),
        "invalid --security-opt 2: \"no-new-privileges:maybe\""
    );
    assert!(o(&["apparmor=unconfined", "label=disable"]).is_ok());

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.json");
    std::fs::write(&f, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
    assert_eq!(
        parse_security_opt_flag(&format!("seccomp={}", f.display())).unwrap(),
        "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"
    );
    assert_eq!(
        parse_security_opt_flag("seccomp=unconfined").unwrap(),
        "seccomp=unconfined"
    );
    assert_eq!(
        parse_security_opt_flag("no-new-privileges").unwrap(),
        "no-new-privileges"
    );
    let missing = dir.path().join("nope.json");
    assert!(msg(parse_security_opt_flag(&format!(
        "seccomp={}",
        missing.display()
    )))
    .starts_with(&format!(
        "opening seccomp profile ({}) failed: ",
        missing.display()
    )));
    std::fs::write(&f, "{ nope").unwrap();
    assert!(
        msg(parse_security_opt_flag(&format!("seccomp={}", f.display()))).starts_with(&format!(
            "compacting json for seccomp profile ({}) failed: ",
            f.display()
        ))
    );
}

#[test]
fn signals() {
    assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
    assert_eq!(parse_signal("term").unwrap(), 15);
    assert_eq!(parse_signal("KILL").unwrap(), 9);
    assert_eq!(parse_signal("sigusr1").unwrap(), 10);
    assert_eq!(parse_signal("9").unwrap(), 9);
    assert_eq!(parse_signal("SIGXFSZ").unwrap(), 25);
    assert_eq!(parse_signal("RTMIN").unwrap(), 34);
    assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
    assert_eq!(parse_signal("RTMAX-1").unwrap(), 63);
    for bad in ["0", "65", "SIGFOO", "", "RTMIN+16"] {
        assert_eq!(msg(parse_signal(bad)), format!("Invalid signal: {bad}"));
    }
}

#[test]
fn users() {
    assert_eq!(
        parse_user("web").unwrap(),
        UserSpec {
            user: "web".into(),
            group: None
        }
    );
    assert_eq!(
        parse_user("1000:1000").unwrap(),
        UserSpec {
            user: "1000".into(),
            group: Some("1000".into())
        }
    );
    for bad in ["", ":g", "u:", "a b", "u:g:h"] {
        assert_eq!(
            msg(parse_user(bad)),
            format!("invalid user specification: '{bad}'"),
            "{bad}"
        );
    }
}

#[test]
fn sysctls() {
    assert_eq!(
        parse_sysctl("net.ipv4.ip_forward=1").unwrap(),
        ("net.ipv4.ip_forward".to_string(), "1".to_string())
    );
    assert_eq!(
        parse_sysctl("kernel.shmmax=1024").unwrap().0,
        "kernel.shmmax"
    );
    assert_eq!(parse_sysctl("fs.mqueue.msg_max=20").unwrap().1, "20");
    assert_eq!(
        msg(parse_sysctl("kernel.hostname=x")),
        "sysctl 'kernel.hostname=x' is not allowed"
    );
    assert_eq!(
        msg(parse_sysctl("net.ipv4.ip_forward")),
        "sysctl 'net.ipv4.ip_forward' is not allowed"
    );
    assert_eq!(
        msg(parse_sysctl("vm.swappiness=1")),
        "sysctl 'vm.swappiness=1' is not allowed"
    );
}

#[test]
fn publish_uses_the_network_parser() {
    let b = parse_publish("127.0.0.1:8080-8081:80-81/udp").unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].0, "80/udp");
    assert_eq!(
        b[1].1,
        PortBinding {
            host_ip: "127.0.0.1".into(),
            host_port: "8081".into()
        }
    );
    let b = parse_publish("80").unwrap();
    assert_eq!(b[0], ("80/tcp".to_string(), PortBinding::default()));
    assert!(parse_publish("0:80").is_err());
    let mut bindings = BTreeMap::new();
    let mut exposed = BTreeMap::new();
    add_publish(&mut bindings, &mut exposed, "8080:80").unwrap();
    add_publish(&mut bindings, &mut exposed, "9090:80").unwrap();
    assert_eq!(bindings["80/tcp"].len(), 2);
    assert!(exposed.contains_key("80/tcp"));
}
