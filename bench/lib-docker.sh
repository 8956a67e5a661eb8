# shellcheck shell=bash
# Docker helpers for benchmarks that run their own dockerd inside a throwaway host
# (unshare --net --mount). Source after scripts/lib.sh; do not run it.
#
#   ensure_docker_installed        docker.io from Debian, without starting its services
#   DK=DIR; start_dockerd [ARGS]   dockerd with data root, exec root, pid file and socket in DIR
#                                  (the exec root in DK_EXEC instead, when set)
#   dk ARGS...                     the docker CLI on that socket
#   stop_dockerd                   its containers, then dockerd by PID, then waits for its shims
#
# Sets DOCKERD to dockerd's PID while it runs (empty otherwise).

DOCKERD=""

# docker.io's own CLI (20.10) matches its daemon. Installing it must not start dockerd in
# the real host namespace (its iptables FORWARD policy drop would stay for the whole
# machine): a policy-rc.d that forbids starting services while it installs, unless one is
# there already, and the units left disabled.
ensure_docker_installed() {
	pkg_installed docker.io && return 0
	local policy=/usr/sbin/policy-rc.d
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\n# coracle bench: no service starts while docker.io installs\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		ensure_packages docker.io || { rm -f "$policy"; return 1; }
		rm -f "$policy"
	else
		ensure_packages docker.io
	fi
	if [[ -d /run/systemd/system ]]; then
		systemctl disable docker.service docker.socket >/dev/null 2>&1 || true
		echo "note: docker.service and docker.socket left disabled (the benchmark runs its own dockerd)"
	fi
}

dk() { /usr/bin/docker -H "unix://$DK/docker.sock" "$@"; }

# start_dockerd [EXTRA DOCKERD ARGS...]: returns 1 (log tail on stderr) if it does not come up.
start_dockerd() {
	mkdir -p "$DK"
	dockerd --data-root "$DK/data" --exec-root "${DK_EXEC:-$DK/exec}" --pidfile "$DK/docker.pid" \
		-H "unix://$DK/docker.sock" "$@" >"$DK/dockerd.log" 2>&1 &
	DOCKERD=$!
	for _ in $(seq 150); do
		dk version >/dev/null 2>&1 && return 0
		kill -0 "$DOCKERD" 2>/dev/null || break
		sleep 0.2
	done
	tail -n 20 "$DK/dockerd.log" >&2
	return 1
}

# Containers first, then dockerd by its PID (it stops its containerd), then a bounded wait
# for the containerd shims of this throwaway host (same network namespace) to exit.
stop_dockerd() {
	[[ -n $DOCKERD ]] || return 0
	dk ps -aq 2>/dev/null | xargs -r /usr/bin/docker -H "unix://$DK/docker.sock" rm -f >/dev/null 2>&1 || true
	kill "$DOCKERD" 2>/dev/null || true
	for _ in $(seq 150); do kill -0 "$DOCKERD" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$DOCKERD" 2>/dev/null && echo "warning: dockerd $DOCKERD still running" >&2
	local me p left
	me=$(readlink /proc/self/ns/net)
	for _ in $(seq 100); do
		left=""
		for p in $(pgrep -x containerd-shim 2>/dev/null) $(pgrep -f '^containerd-shim-runc' 2>/dev/null); do
			[[ $(readlink "/proc/$p/ns/net" 2>/dev/null) == "$me" ]] && left="$left $p"
		done
		[[ -z $left ]] && break
		sleep 0.1
	done
	[[ -n $left ]] && echo "warning: containerd shims still running:$left" >&2
	DOCKERD=""
}
