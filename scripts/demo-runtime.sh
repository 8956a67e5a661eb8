#!/usr/bin/env bash
# A container seen from the inside and from the host. Run as root on Debian 12:
#
#   scripts/demo-runtime.sh
#
# Builds coracle-runtime, makes a busybox bundle, runs a shell in it that reports what
# it sees (its PID, hostname, processes, namespaces, cgroups), compares that with the
# host, then runs a second container in the background to show list/state/ps/exec/kill/
# delete. Everything it creates is removed at the end, also when a step fails.
#
# RUNTIME=runc scripts/demo-runtime.sh runs the same demo with another runc-compatible runtime.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$REPO/scripts/lib.sh"

if [[ -t 1 ]]; then
	BOLD=$'\033[1m' DIM=$'\033[2m' RESET=$'\033[0m'
else
	BOLD='' DIM='' RESET=''
fi

# A section header, then a few lines saying what to look for.
section() {
	printf '\n%s== %s ==%s\n' "$BOLD" "$1" "$RESET"
	shift
	local line
	for line in "$@"; do
		printf '%s%s%s\n' "$DIM" "$line" "$RESET"
	done
}

# Show a command, then run it.
show() {
	printf '%s$ %s%s\n' "$BOLD" "$*" "$RESET"
	"$@"
}

[[ $EUID -eq 0 ]] || die "run the demo as root (containers need namespaces, mounts and cgroups)"

# ---------------------------------------------------------------------------------
section "Setting up" "Installing missing packages and building the runtime."
ensure_packages busybox-static jq procps
if [[ -n "${RUNTIME:-}" ]]; then
	RT=$(command -v "$RUNTIME") || die "RUNTIME=$RUNTIME: not found"
else
	ensure_packages libseccomp-dev pkg-config
	ensure_cargo
	(cd "$REPO" && cargo build --release -p coracle-runtime)
	RT="${CARGO_TARGET_DIR:-$REPO/target}/release/coracle-runtime"
fi
RT_NAME=$(basename "$RT")
echo "runtime: $RT"

DEMO=$(mktemp -d /tmp/coracle-demo.XXXXXX)
STATE="$DEMO/state"   # the runtime's --root: where it keeps container state
ID=$(random_hex 12)   # short hex IDs, as Docker shows them
ID2=$(random_hex 12)
CGROUP_PARENT=coracle-demo

cleanup() {
	local rc=$? id hier
	set +e
	trap - EXIT INT TERM
	for id in "$ID" "$ID2"; do
		"$RT" --root "$STATE" delete --force "$id" >/dev/null 2>&1
	done
	for hier in /sys/fs/cgroup /sys/fs/cgroup/*/; do
		for id in "$ID" "$ID2"; do
			[[ -d "${hier%/}/$CGROUP_PARENT/$id" ]] && rmdir "${hier%/}/$CGROUP_PARENT/$id"
		done
		[[ -d "${hier%/}/$CGROUP_PARENT" ]] && rmdir "${hier%/}/$CGROUP_PARENT" 2>/dev/null
	done
	if [[ -n "$(mounts_under "$DEMO")" ]]; then
		echo "warning: mounts remain under $DEMO; not removing it" >&2
	else
		rm -rf "$DEMO"
	fi
	if ((rc == 0)); then
		printf '\n%sDone: containers deleted, temporary files removed.%s\n' "$BOLD" "$RESET"
	else
		printf '\n%sThe demo stopped at a failed step (status %d); everything it made was removed.%s\n' \
			"$BOLD" "$rc" "$RESET" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A bundle whose process runs SCRIPT with busybox sh, with its hostname set to the
# container ID (as Docker does) and its own cgroup under /coracle-demo.
make_bundle() {
	local dir=$1 id=$2
	shift 2
	"$REPO/scripts/mkbundle.sh" "$dir" -- "$@" >/dev/null
	jq --arg id "$id" --arg cg "/$CGROUP_PARENT/$id" \
		'.hostname = $id | .linux.cgroupsPath = $cg' "$dir/config.json" >"$dir/config.json.new"
	mv "$dir/config.json.new" "$dir/config.json"
}

# What the shell inside the first container runs, from a file in its rootfs, so ps
# shows a short command line.
make_bundle "$DEMO/bundle" "$ID" sh /inside.sh
cat >"$DEMO/bundle/rootfs/inside.sh" <<'INSIDE'
echo "--- echo PID \$\$"
echo "PID $$"
echo "--- hostname"
hostname
echo "--- ps -ef"
ps -ef
echo "--- ls -l /proc/self/ns/"
ls -l /proc/self/ns/
echo "--- cat /proc/self/cgroup"
cat /proc/self/cgroup
INSIDE
make_bundle "$DEMO/bundle-bg" "$ID2" sleep 600
echo "bundles: $DEMO/bundle (rootfs + config.json), $DEMO/bundle-bg"

# ---------------------------------------------------------------------------------
section "The host" \
	"First the host's own view, to compare with the container's below."
show hostname
echo "this script runs as PID $$ on the host"
echo "host namespaces of this script:"
declare -A HOST_NS
for ns in cgroup ipc mnt net pid uts user time; do
	HOST_NS[$ns]=$(readlink "/proc/$$/ns/$ns")
	printf '  %-7s %s\n' "$ns" "${HOST_NS[$ns]}"
done

# ---------------------------------------------------------------------------------
section "Inside a container" \
	"The runtime creates new PID, mount, UTS, IPC, network and cgroup namespaces, pivots" \
	"into the busybox rootfs and starts sh. What to look for:" \
	"  * the shell is PID 1, like nginx's master process in a Docker container;" \
	"  * the hostname is the container ID, not the host's name;" \
	"  * ps sees only the container's own processes (the shell and ps itself);" \
	"  * the namespace inodes differ from the host's (compared after this);" \
	"  * /proc/self/cgroup shows '/': the cgroup namespace hides the host's tree."
if ! show "$RT" --root "$STATE" run --bundle "$DEMO/bundle" "$ID" </dev/null | tee "$DEMO/inside.out"; then
	die "$RT_NAME could not run the container"
fi

section "Namespaces: host vs container" \
	"An inode number names a namespace: the same number means shared with the host."
printf '  %-7s %-20s %-20s %s\n' namespace host container ""
for ns in cgroup ipc mnt net pid uts user time; do
	inside=$(sed -n "s|.* $ns -> \\($ns:\\[[0-9]*\\]\\)\$|\\1|p" "$DEMO/inside.out")
	if [[ -z "$inside" ]]; then
		verdict="(not seen)"
	elif [[ "$inside" == "${HOST_NS[$ns]}" ]]; then
		verdict="shared with the host"
	else
		verdict="the container's own"
	fi
	printf '  %-7s %-20s %-20s %s\n' "$ns" "${HOST_NS[$ns]}" "${inside:--}" "$verdict"
done

# ---------------------------------------------------------------------------------
section "A container in the background" \
	"run --detach returns once the container runs; the runtime keeps its state under --root."
if ! show "$RT" --root "$STATE" run --bundle "$DEMO/bundle-bg" --detach "$ID2" \
	</dev/null >"$DEMO/bg.log" 2>&1; then
	cat "$DEMO/bg.log" >&2
	die "$RT_NAME could not start the detached container"
fi
show "$RT" --root "$STATE" list
# (runc prints the state JSON without a final newline)
printf '%s$ %s%s\n%s\n' "$BOLD" "$RT --root $STATE state $ID2" "$RESET" \
	"$("$RT" --root "$STATE" state "$ID2")"
HOST_PID=$("$RT" --root "$STATE" state "$ID2" | jq -r .pid)

section "One process, two PIDs" \
	"The host sees the container's sleep as PID $HOST_PID; inside its PID namespace it is PID 1." \
	"exec starts a new process (here ps) inside the running container's namespaces."
show "$RT" --root "$STATE" ps "$ID2"
show "$RT" --root "$STATE" exec "$ID2" ps -ef

section "Stopping and deleting" \
	"kill sends a signal to the container's PID 1; delete removes its state and cgroup."
show "$RT" --root "$STATE" kill "$ID2" KILL
for _ in $(seq 1 50); do
	status=$("$RT" --root "$STATE" state "$ID2" | jq -r .status)
	[[ "$status" == stopped ]] && break
	sleep 0.1
done
echo "status: $status"
show "$RT" --root "$STATE" delete "$ID2"
show "$RT" --root "$STATE" list
