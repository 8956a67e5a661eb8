#!/usr/bin/env bash
# The seed article's scenario with Coracle. Run as root on Debian 12:
#
#   scripts/demo.sh
#
# Builds coracle (and its shim, runtime and DNS responder), makes a busybox image, and then,
# inside a throwaway host (its own network and mount namespace, so nothing touches this
# machine's network), runs a busybox httpd container published on a host port, fetches the page
# through it, and shows what the seed shows: `coracle ps`, PID 1 inside, `ifconfig` and
# `route -n` inside, the bridge and the veth on the host, and the shim -> PID 1 process tree.
# A second container reaches the first over the bridge. Everything is removed at the end, also
# when a step fails.
#
# Environment: NO_BUILD=1 uses the existing target/release binaries.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$REPO/scripts/lib.sh"

[[ $EUID -eq 0 ]] || die "run the demo as root (containers need namespaces, mounts and cgroups)"

# The part that runs inside the throwaway host (re-invoked by unshare below).
if [[ "${1:-}" == "--inside" ]]; then
	if [[ -t 1 ]]; then
		BOLD=$'\033[1m' DIM=$'\033[2m' RESET=$'\033[0m'
	else
		BOLD='' DIM='' RESET=''
	fi
	section() {
		printf '\n%s== %s ==%s\n' "$BOLD" "$1" "$RESET"
		shift
		local line
		for line in "$@"; do printf '%s%s%s\n' "$DIM" "$line" "$RESET"; done
	}
	show() {
		printf '%s$ %s%s\n' "$BOLD" "$*" "$RESET"
		"$@"
	}
	coracle() {
		"$BIN/coracle" --root "$WORK/root" --run-root "$WORK/run" --cgroup-parent /coracle-demo "$@"
	}
	cleanup_inside() {
		local id
		for id in $(coracle ps -aq --no-trunc 2>/dev/null); do
			coracle rm -f "$id" >/dev/null 2>&1 || true
		done
	}
	trap cleanup_inside EXIT
	ip link set lo up

	section "an image" "A busybox image made by scripts/mkimage.sh, loaded like a 'docker save' archive."
	show coracle load -i "$WORK/layout"
	show coracle images

	section "run a web server" "Detached, port 8080 of the host published to port 80 of the container."
	mkdir -p "$WORK/www"
	echo "Hello from a Coracle container" >"$WORK/www/index.html"
	show coracle run -d --name web -p 8080:80 -v "$WORK/www:/www:ro" busybox httpd -f -p 80 -h /www
	show coracle ps

	section "the page, through the published port" "From the host: DNAT to the container's eth0."
	show busybox timeout 5 busybox wget -qO- http://127.0.0.1:8080/

	section "inside: PID 1" "The container's process is PID 1; the exec'd ps has PPID 0 (its parent is outside)."
	show coracle exec web ps -o pid,ppid,user,args
	show coracle exec web hostname

	section "inside: the network" "eth0 with the next free address of 172.17.0.0/16, default route via the bridge."
	show coracle exec web ifconfig
	show coracle exec web route -n

	section "on the host: the bridge and the veth" "coracle0 holds the gateway 172.17.0.1; the container's veth is enslaved to it."
	show ip addr show coracle0
	# (stderr dropped: iproute2 cannot name the peer's namespace from inside unshare)
	show ip -br link show master coracle0 2>/dev/null
	show coracle port web

	section "the process tree" "Each container sits under its own small shim, whose parent is init (or the nearest subreaper)."
	local_pid=$(coracle inspect -f '{{.State.Pid}}' web)
	shim_pid=$(awk '{print $4}' "/proc/$local_pid/stat")
	show ps -o pid,ppid,rss,comm -p "$shim_pid,$local_pid"

	section "container to container" "A second container fetches the page from the first over the bridge."
	web_ip=$(coracle inspect -f '{{.NetworkSettings.IPAddress}}' web)
	show coracle run --rm busybox wget -qO- "http://$web_ip/"

	section "clean up" "stop, rm; the veth, address, rules and mounts go with the container."
	show coracle stop -t 1 web
	show coracle rm web
	show coracle ps -a
	show ip -br link show master coracle0 2>/dev/null
	exit 0
fi

WORK=$(mktemp -d /tmp/coracle-demo.XXXXXX)
cleanup() {
	local rc=$?
	set +e
	if [[ -n "$(mounts_under "$WORK")" ]]; then
		echo "warning: mounts remain under $WORK; not removing it" >&2
	else
		rm -rf "$WORK"
	fi
	cgroup_rmdir_tree coracle-demo
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "packages"
ensure_packages busybox-static umoci openssl iproute2 nftables libseccomp-dev pkg-config procps util-linux

BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
if [[ -z "${NO_BUILD:-}" ]]; then
	step "cargo build --release (coracle, coracle-shim, coracle-runtime, coracle-dns)"
	ensure_cargo
	(cd "$REPO" && cargo build --release -p coracle-cli -p coracle-shim -p coracle-runtime -p coracle-network)
fi
for b in coracle coracle-shim coracle-runtime coracle-dns; do
	[[ -x "$BIN/$b" ]] || die "$BIN/$b is missing (build it, or unset NO_BUILD)"
done

step "image"
# The layout's tag "busybox" loads as busybox:latest.
"$REPO/scripts/mkimage.sh" "$WORK/layout" busybox -- sh >/dev/null

step "the scenario, in a throwaway host (unshare --net --mount)"
WORK="$WORK" BIN="$BIN" unshare --net --mount --propagation private "$0" --inside
echo
echo "done: everything the demo made is gone."
