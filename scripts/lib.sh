# shellcheck shell=bash
# Helpers shared by scripts/ and bench/. Source this file; do not run it.

# Print a step header that stands out in long CI logs.
step() {
	printf '\n==> %s\n' "$*"
}

die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# True when the Debian package is fully installed (not just "config-files").
pkg_installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# Install the Debian packages that are missing. `apt-get update` runs at most once
# per script tree (the marker is exported to child scripts), and only when needed.
ensure_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		pkg_installed "$pkg" || missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return 0
	[[ $EUID -eq 0 ]] || die "missing packages: ${missing[*]} (run as root, or install them)"
	echo "installing: ${missing[*]}"
	if [[ -z "${CORACLE_APT_UPDATED:-}" ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		export CORACLE_APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# rustup installs into ~/.cargo/bin, which a non-login shell may not have on PATH.
ensure_cargo() {
	if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
		PATH="${HOME:-/root}/.cargo/bin:$PATH"
		export PATH
	fi
	command -v cargo >/dev/null 2>&1 || die "cargo not found (install the Rust toolchain with rustup)"
}

# A random lower-case hex string of $1 characters (even), like a short container ID.
random_hex() {
	od -An -N"$(($1 / 2))" -tx1 /dev/urandom | tr -d ' \n'
}

# Remove the cgroup directories named $1 (a path relative to each hierarchy, e.g.
# "coracle-bench") from every mounted hierarchy, deepest first. Only rmdir: a cgroup
# that still holds processes stays and is reported, never killed from here.
cgroup_rmdir_tree() {
	local rel=$1 hier dir rc=0
	for hier in /sys/fs/cgroup /sys/fs/cgroup/*/; do
		dir="${hier%/}/$rel"
		[[ -d "$dir" ]] || continue
		while IFS= read -r -d '' d; do
			rmdir "$d" 2>/dev/null || {
				echo "warning: cgroup $d is not empty; left in place" >&2
				rc=1
			}
		done < <(find "$dir" -depth -type d -print0)
	done
	return "$rc"
}

# Mount points (one per line) at or below directory $1, from this mount namespace.
mounts_under() {
	local dir
	dir=$(realpath -m "$1")
	awk -v d="$dir" '{
		mp = $5
		gsub(/\\040/, " ", mp)
		if (mp == d || index(mp, d "/") == 1) print mp
	}' /proc/self/mountinfo
}
