//! End-to-end tests of bridge networking, in netavark's style: each test is a
//! shell script run in its own throwaway host (`unshare --net --mount`), driving
//! `coracle-net` with network namespaces standing in for containers, and real
//! traffic (ping, HTTP, DNS) between namespaces the test made. Nothing outside
//! the throwaway host is touched; everything it made dies with it, and each script
//! also checks its own teardown left nothing.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

const NET: &str = env!("CARGO_BIN_EXE_coracle-net");

fn skip() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return true;
    }
    false
}

/// Common prelude: a temp dir, `net` (coracle-net with this test's own state, run
/// dir, table, default bridge and subnet), helpers, and a trap that kills the
/// background processes the script started (by pid).
const PRELUDE: &str = r#"
set -euo pipefail
T=$(mktemp -d)
PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  for f in "$T"/ns/*; do umount -l "$f" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "failed at line $LINENO: $BASH_COMMAND" >&2' ERR
net() { "$NET_BIN" --state-dir "$T/state" --run-dir "$T/run" --table coracle_test \
        --default-bridge ctest0 --default-subnet 10.123.0.0/24 "$@"; }
in_ns() { local ns=$1; shift; nsenter --net="$T/ns/$ns" "$@"; }
bb() { busybox "$@"; }
ip link set lo up
mkdir -p "$T/ns" "$T/www"
echo hello-from-container > "$T/www/index.html"
serve() { # serve NS PORT: a busybox httpd in namespace NS
  in_ns "$1" busybox httpd -f -p "$2" -h "$T/www" >"$T/httpd-$1.log" 2>&1 & PIDS="$PIDS $!"
  for _ in $(seq 50); do in_ns "$1" busybox timeout 1 busybox wget -q -O /dev/null "http://127.0.0.1:$2/" 2>/dev/null && return 0; sleep 0.1; done
  echo "httpd in $1 did not start"; return 1
}
# grep that reads all its input (grep -q exits early: SIGPIPE under pipefail).
has() { grep -- "$1" >/dev/null; }
# busybox 1.35's wget crashes with -T: bound it with timeout(1) instead.
fetch() { busybox timeout 3 busybox wget -q -O - "$@"; }
leftovers() {
  local links; links=$(ip -o link show | awk -F': ' '{print $2}' | grep -v '^lo$' || true)
  [ -z "$links" ] || { echo "links left: $links"; return 1; }
  [ -z "$(nft list tables)" ] || { echo "nft tables left: $(nft list tables)"; return 1; }
  [ -z "$(ls "$T/state/endpoints" 2>/dev/null | xargs -r -I{} ls "$T/state/endpoints/{}")" ] || { echo "endpoint records left"; return 1; }
}
"#;

fn run_script(name: &str, body: &str) {
    let script = format!("{PRELUDE}\n{body}\necho SCRIPT-OK");
    let mut child = Command::new("unshare")
        .args([
            "--net",
            "--mount",
            "--propagation",
            "private",
            "--",
            "bash",
            "-c",
            &script,
        ])
        // Its own process group, so a timeout ends the script and everything it
        // started (by the group id of the process we spawned).
        .process_group(0)
        .env("NET_BIN", NET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("unshare");
    // Bounded: a hung script is killed (by its pid) after two minutes.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("SCRIPT-OK"),
        "{name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

#[test]
fn two_containers_on_the_default_bridge_and_a_published_port() {
    if skip() {
        return;
    }
    run_script(
        "default bridge",
        r#"
net netns-add "$T/ns/a"; net netns-add "$T/ns/b"
net connect --container a --netns "$T/ns/a" -p 8080:80 -p 127.0.0.1:8081:80 > "$T/a.json"
net connect --container b --netns "$T/ns/b" > "$T/b.json"
grep -q '"ip": "10.123.0.2"' "$T/a.json"; grep -q '"ip": "10.123.0.3"' "$T/b.json"
# What the seed shows from inside: eth0 with the address, default route via the bridge.
in_ns a ip -4 -o addr show eth0 | has 'inet 10.123.0.2/24'
in_ns a ip route | has '^default via 10.123.0.1 dev eth0'
in_ns a ip link show eth0 | has 'link/ether 02:42:0a:7b:00:02'
ip -o link show master ctest0 | has veth
# Containers on one bridge talk directly.
in_ns a busybox ping -c1 -W2 10.123.0.3 >/dev/null
in_ns b busybox ping -c1 -W2 10.123.0.1 >/dev/null
serve a 80
# The published port from the host: its own address (the gateway), and 127.0.0.1.
fetch http://10.123.0.1:8080/ | has hello-from-container
fetch http://127.0.0.1:8080/ | has hello-from-container
fetch http://127.0.0.1:8081/ | has hello-from-container
# ... and from another container, through the host's address.
in_ns b busybox timeout 3 busybox wget -q -O - http://10.123.0.1:8080/ | has hello-from-container
# A rule flush loses the port; reload brings it back.
nft flush ruleset
if fetch http://127.0.0.1:8080/ >/dev/null 2>&1; then echo "reachable after flush?"; exit 1; fi
net reload
fetch http://127.0.0.1:8080/ | has hello-from-container
# Teardown leaves nothing.
net disconnect --container a; net disconnect --container b
net disconnect --container b   # idempotent
net rm bridge
net netns-rm "$T/ns/a"; net netns-rm "$T/ns/b"
leftovers
"#,
    );
}

#[test]
fn user_defined_networks_resolve_names_and_are_isolated() {
    if skip() {
        return;
    }
    run_script(
        "user-defined networks",
        r#"
net create backend --subnet 10.124.0.0/24 > "$T/backend.json"
grep -q '"dns": true' "$T/backend.json"
net create other > "$T/other.json"          # subnet from the pool
for c in web db x; do net netns-add "$T/ns/$c"; done
net connect --network backend --container web --netns "$T/ns/web" --name web --name 3f2a9c1d7e4b --name api
net connect --network backend --container db --netns "$T/ns/db" --name db
net connect --network other --container x --netns "$T/ns/x" --name x > "$T/x.json"
# Names, short ids and aliases resolve through the responder on the gateway.
for name in web 3f2a9c1d7e4b api; do
  ok=""
  for _ in $(seq 30); do
    if in_ns db busybox nslookup "$name" 10.124.0.1 2>/dev/null | has '10.124.0.2'; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "$name did not resolve"; in_ns db busybox nslookup "$name" 10.124.0.1 || true; exit 1; }
done
in_ns web busybox ping -c1 -W2 10.124.0.3 >/dev/null
# The responder does not keep the SIGINT/SIGTERM/SIGHUP/SIGQUIT block coracle-net
# works under (bits 0x4007 of SigBlk), or it could not be stopped.
dpid=$(cat "$T/run/dns-run/coracle-dns.pid")
blk=$(awk '/^SigBlk:/ {print $2}' "/proc/$dpid/status")
[ $(( 0x$blk & 0x4007 )) = 0 ] || { echo "coracle-dns blocks signals: SigBlk $blk"; exit 1; }
# A second network on a running container is a second interface, eth1.
net connect --container web --netns "$T/ns/web" > "$T/web-bridge.json"
grep -q '"interface": "eth1"' "$T/web-bridge.json"
in_ns web ip -4 -o addr show eth1 | has 'inet 10.123.0.2/24'
in_ns web ip -4 -o addr show eth0 | has 'inet 10.124.0.2/24'
net disconnect --container web
if in_ns web ip link show eth1 >/dev/null 2>&1; then echo "eth1 left after disconnect"; exit 1; fi
net rm bridge
# No traffic between two different networks.
XIP=$(grep -o '"ip": "[0-9.]*"' "$T/x.json" | cut -d'"' -f4)
if in_ns web busybox ping -c1 -W1 "$XIP" >/dev/null 2>&1; then echo "two networks talk"; exit 1; fi
# Removing a network in use is refused.
if net rm backend 2>"$T/err"; then echo "rm of a network in use succeeded"; exit 1; fi
grep -q 'connected containers' "$T/err"
for c in web db; do net disconnect --network backend --container $c; done
net disconnect --network other --container x
net rm backend; net rm other
# The responder exits once no network needs it.
for _ in $(seq 50); do
  pid=$(cat "$T/run/dns-run/coracle-dns.pid" 2>/dev/null || true)
  [ -n "$pid" ] && [ -d /proc/$pid ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = coracle-dns ] || break
  sleep 0.1
done
if [ -n "${pid:-}" ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = coracle-dns ]; then echo "coracle-dns still running"; exit 1; fi
for c in web db x; do net netns-rm "$T/ns/$c"; done
leftovers
"#,
    );
}

#[test]
fn internal_network_cannot_reach_out() {
    if skip() {
        return;
    }
    run_script(
        "internal",
        r#"
net create sealed --subnet 10.125.0.0/24 --internal
net netns-add "$T/ns/i"
net connect --network sealed --container i --netns "$T/ns/i" --name sealed-one
# An "outside" host: its own namespace behind a routed veth (192.0.2.0/24).
unshare --net busybox sleep 120 & OUT=$!; PIDS="$PIDS $OUT"; sleep 0.2
ip link add outside0 type veth peer name outside1
ip link set outside1 netns "$OUT"
ip addr add 192.0.2.1/24 dev outside0; ip link set outside0 up
nsenter -t "$OUT" -n ip addr add 192.0.2.2/24 dev outside1
nsenter -t "$OUT" -n ip link set outside1 up
# Positive control: a container on the default bridge reaches it (masqueraded).
net netns-add "$T/ns/o"; net connect --container o --netns "$T/ns/o" >/dev/null
in_ns o busybox ping -c1 -W2 192.0.2.2 >/dev/null
# The internal network does not.
if in_ns i busybox ping -c1 -W1 192.0.2.2 >/dev/null 2>&1; then echo "internal network got out"; exit 1; fi
# Nor the host itself: a listener on the host's addresses (the gateway, the other
# bridge's, the routed veth's) is out of reach; each try bounded to 2 s.
busybox httpd -f -p 8099 -h "$T/www" & PIDS="$PIDS $!"
for _ in $(seq 50); do fetch http://127.0.0.1:8099/ >/dev/null 2>&1 && break; sleep 0.1; done
in_ns o busybox timeout 3 busybox wget -q -O - http://10.123.0.1:8099/ | has hello-from-container  # control
for addr in 10.125.0.1 10.123.0.1 192.0.2.1; do
  s=$(date +%s)
  if in_ns i busybox timeout 2 busybox wget -q -O - "http://$addr:8099/" >/dev/null 2>&1; then
    echo "internal network reached the host at $addr"; exit 1
  fi
  [ $(( $(date +%s) - s )) -le 3 ] || { echo "the refused try at $addr took too long"; exit 1; }
done
if in_ns i busybox ping -c1 -W1 10.125.0.1 >/dev/null 2>&1; then echo "internal network pings the host"; exit 1; fi
# ... but DNS to Coracle's responder on its gateway still answers.
ok=""
for _ in $(seq 30); do
  if in_ns i busybox nslookup sealed-one 10.125.0.1 2>/dev/null | has '10.125.0.2'; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || { echo "DNS on the internal network does not answer"; exit 1; }
# The host still reaches into the internal network (replies pass).
serve i 80
fetch http://10.125.0.2:80/ | has hello-from-container
if net connect --network sealed --container j --netns "$T/ns/i" -p 9000:80 2>"$T/err"; then
  echo "published a port on an internal network"; exit 1
fi
net disconnect --container o; net rm bridge; net netns-rm "$T/ns/o"
ip link del outside0
net disconnect --network sealed --container i; net rm sealed; net netns-rm "$T/ns/i"
leftovers
"#,
    );
}

#[test]
fn fifty_concurrent_connects_get_fifty_addresses() {
    if skip() {
        return;
    }
    run_script(
        "concurrency",
        r#"
for i in $(seq 50); do net netns-add "$T/ns/n$i"; done
for i in $(seq 50); do
  net connect --container "c$i" --netns "$T/ns/n$i" > "$T/out$i" 2> "$T/err$i" & PIDS="$PIDS $!"
done
for p in $PIDS; do wait "$p" || { echo "a connect failed:"; cat "$T"/err*; exit 1; }; done
PIDS=""
n=$(cat "$T"/out* | grep -o '"ip": "[0-9.]*"' | sort -u | wc -l)
[ "$n" = 50 ] || { echo "distinct addresses: $n"; exit 1; }
if cat "$T"/out* | has -e '"ip": "10.123.0.0"' -e '"ip": "10.123.0.1"' -e '"ip": "10.123.0.255"'; then
  echo "a reserved address was handed out"; exit 1
fi
[ "$(ip -o link show master ctest0 | wc -l)" = 50 ]
for i in $(seq 50); do net disconnect --container "c$i" & PIDS="$PIDS $!"; done
for p in $PIDS; do wait "$p"; done
PIDS=""
net rm bridge
for i in $(seq 50); do net netns-rm "$T/ns/n$i"; done
leftovers
"#,
    );
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    if skip() {
        return;
    }
    run_script(
        "bad input",
        r#"
expect_fail() { local want=$1; shift; if "$@" 2>"$T/err"; then echo "succeeded: $*"; exit 1; fi
  grep -q -- "$want" "$T/err" || { echo "error for '$*' lacks '$want':"; cat "$T/err"; exit 1; }; }
net netns-add "$T/ns/a"
expect_fail 'invalid port spec "80:abc"' net connect --container a --netns "$T/ns/a" -p 80:abc
expect_fail 'not a network namespace' net connect --container a --netns "$T/nonexistent"
expect_fail 'invalid subnet "10.0.0.0/33"' net create n1 --subnet 10.0.0.0/33
net create n2 --subnet 10.126.0.0/16
expect_fail 'overlaps network "n2"' net create n3 --subnet 10.126.5.0/24
net connect --container a --netns "$T/ns/a" -p 8080:80
net netns-add "$T/ns/b"
expect_fail '8080' net connect --container b --netns "$T/ns/b" -p 8080:80
# The refused connect left no endpoint, address or veth behind.
[ "$(ip -o link show master ctest0 | wc -l)" = 1 ]
[ "$(net inspect bridge | grep -c '"container"')" = 1 ]
net disconnect --container a; net rm bridge; net rm n2
net netns-rm "$T/ns/a"; net netns-rm "$T/ns/b"
leftovers
"#,
    );
}

#[test]
fn publish_all_picks_free_distinct_host_ports() {
    if skip() {
        return;
    }
    run_script(
        "publish all",
        r#"
hostport() { grep -o '"host_port_start": [0-9]*' "$1" | head -n1 | awk '{print $2}'; }
# A host process already listens on the range's first port: it must be skipped.
busybox httpd -f -p 127.0.0.1:40000 -h "$T/www" & PIDS="$PIDS $!"
for _ in $(seq 50); do fetch http://127.0.0.1:40000/ >/dev/null 2>&1 && break; sleep 0.1; done
RANGE="--host-port-range 40000-40002"
for c in a b c d; do net netns-add "$T/ns/$c"; done
net $RANGE connect --container a --netns "$T/ns/a" -p 80 > "$T/a.json"
net $RANGE connect --container b --netns "$T/ns/b" -P --expose 80 --expose 53/udp > "$T/b.json"
PA=$(hostport "$T/a.json"); PB=$(hostport "$T/b.json")
[ "$PA" = 40001 ] || { echo "a got host port '$PA', want 40001"; cat "$T/a.json"; exit 1; }
[ "$PB" = 40002 ] || { echo "b got host port '$PB', want 40002"; cat "$T/b.json"; exit 1; }
# The UDP port has its own numbers: 40000 is only taken for TCP on the host.
grep -A1 '"host_port_start": 40000' "$T/b.json" | has udp || { echo "53/udp not on 40000"; cat "$T/b.json"; exit 1; }
# The chosen ports answer from the host namespace (127.0.0.1 and the host's address).
serve a 80; serve b 80
fetch "http://127.0.0.1:$PA/" | has hello-from-container
fetch "http://10.123.0.1:$PB/" | has hello-from-container
# The range is used up (40000 is the host's): a clear error, nothing half-made.
if net $RANGE connect --container c --netns "$T/ns/c" -p 80 2>"$T/err"; then echo "got a port from a full range"; exit 1; fi
grep -q 'no free host port for 80/tcp in 40000-40002' "$T/err" || { cat "$T/err"; exit 1; }
[ "$(ip -o link show master ctest0 | wc -l)" = 2 ]
# -P without --expose publishes nothing; --expose without -P neither.
net $RANGE connect --container d --netns "$T/ns/d" --expose 80 > "$T/d.json"
grep -q '"ports": \[\]' "$T/d.json"
# Teardown releases a's port: the next request gets it.
net disconnect --container a
net $RANGE connect --container c --netns "$T/ns/c" -p 80 > "$T/c.json"
[ "$(hostport "$T/c.json")" = 40001 ] || { echo "a's port was not released"; cat "$T/c.json"; exit 1; }
for c in b c d; do net disconnect --container $c; done
net rm bridge
for c in a b c d; do net netns-rm "$T/ns/$c"; done
leftovers
"#,
    );
}

#[test]
fn sigterm_mid_teardown_completes_it_and_mid_setup_rolls_back() {
    if skip() {
        return;
    }
    run_script(
        "signals",
        r#"
# coracle-net itself in the background ($! is its pid: the subshell execs it),
# paused after one step, then SIGTERM by that pid.
net_paused() { local pause=$1 err=$2; shift 2
  ( export CORACLE_NET_TEST_PAUSE=$pause; exec "$NET_BIN" --state-dir "$T/state" --run-dir "$T/run" \
      --table coracle_test --default-bridge ctest0 --default-subnet 10.123.0.0/24 "$@" 2>"$err" >/dev/null ) &
  BG=$!
  for _ in $(seq 100); do grep -q 'test pause' "$err" 2>/dev/null && return 0; sleep 0.05; done
  echo "coracle-net did not reach its pause: $(cat "$err")"; return 1
}
for c in a b; do net netns-add "$T/ns/$c"; done
net connect --container a --netns "$T/ns/a" -p 8080:80 >/dev/null
nft list table inet coracle_test | has 'dport 8080'
# Teardown: SIGTERM after the veth is gone; the record, address and rules still go.
net_paused endpoint-removed:1500 "$T/d.err" disconnect --container a
kill -TERM "$BG"; rc=0; wait "$BG" || rc=$?
[ "$rc" = 143 ] || { echo "disconnect exit $rc, want 143 (SIGTERM after finishing)"; cat "$T/d.err"; exit 1; }
grep -q 'SIGTERM arrived while working' "$T/d.err" || { cat "$T/d.err"; exit 1; }
[ -z "$(ip -o link show master ctest0)" ] || { echo "veth left"; exit 1; }
[ ! -e "$T/state/endpoints/bridge/a.json" ] || { echo "endpoint record left"; exit 1; }
if nft list table inet coracle_test | has 'dport 8080'; then echo "published port rule left"; exit 1; fi
# Setup: SIGTERM after the veth and the record exist, before the firewall: rolled back.
net_paused record:1500 "$T/c.err" connect --container b --netns "$T/ns/b" -p 8081:80
kill -TERM "$BG"; rc=0; wait "$BG" || rc=$?
[ "$rc" = 143 ] || { echo "connect exit $rc, want 143"; cat "$T/c.err"; exit 1; }
grep -q 'interrupted (SIGTERM received) after record; rolled back' "$T/c.err" || { cat "$T/c.err"; exit 1; }
[ -z "$(ip -o link show master ctest0)" ] || { echo "veth left after rollback"; exit 1; }
[ ! -e "$T/state/endpoints/bridge/b.json" ] || { echo "endpoint record left after rollback"; exit 1; }
if in_ns b ip link show eth0 >/dev/null 2>&1; then echo "eth0 left in the container"; exit 1; fi
if nft list table inet coracle_test 2>/dev/null | has 'dport 8081'; then echo "rule left after rollback"; exit 1; fi
# The address went back too: no allocation is left, and b can connect again.
if grep -q '"owner"' "$T/state/ipam/bridge.json"; then echo "allocation left:"; cat "$T/state/ipam/bridge.json"; exit 1; fi
net connect --container b --netns "$T/ns/b" | has '"ip": "10.123.0.'
net disconnect --container b
net rm bridge
for c in a b; do net netns-rm "$T/ns/$c"; done
leftovers
"#,
    );
}
