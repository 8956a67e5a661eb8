#!/usr/bin/env bash
# Pull + unpack of a multi-layer image from a local registry: coracle vs skopeo+umoci vs
# podman, then the second pull of an image sharing most of its layers. Run as root:
#
#   bench/images.sh
#
# Environment:
#   ROUNDS=5        timed rounds (each round runs every tool once, in turn)
#   LAYERS=6        filler layers of the image (plus the busybox base layer)
#   LAYER_MB=50     size of each filler layer (incompressible data)
#   TOOLS="coracle skopeo-umoci podman"
#   NO_BUILD=1      use the existing target/release/coracle
#
# The registry is Debian's docker-registry on 127.0.0.1 with its storage in a temp dir; the
# images come from scripts/mkimage.sh and are pushed with skopeo. Image `a` has the base and
# LAYERS filler layers; image `b` shares all of them and adds one more. Every tool starts each
# round from an empty store; "second pull" pulls `b` into the store that holds `a`. Each tool
# ends with the image unpacked on disk (coracle: layers; skopeo+umoci: an OCI layout and an
# unpacked bundle; podman: its overlay storage). Results replace this benchmark's section of
# bench/RESULTS.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
. "$REPO/scripts/lib.sh"

ROUNDS=${ROUNDS:-5}
LAYERS=${LAYERS:-6}
LAYER_MB=${LAYER_MB:-50}
read -r -a TOOLS <<<"${TOOLS:-coracle skopeo-umoci podman}"

[[ $EUID -eq 0 ]] || die "run the benchmark as root"

step "packages"
ensure_packages docker-registry skopeo umoci podman python3 openssl

WORK=$(mktemp -d /tmp/coracle-bench-images.XXXXXX)
REGISTRY_PID=""
cleanup() {
	local rc=$?
	set +e
	[[ -n $REGISTRY_PID ]] && kill "$REGISTRY_PID" 2>/dev/null && wait "$REGISTRY_PID" 2>/dev/null
	# podman's overlay storage leaves mounts only while containers exist; none are made here.
	if [[ -n "$(mounts_under "$WORK")" ]]; then
		echo "warning: mounts remain under $WORK; not removing it" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CORACLE="${CARGO_TARGET_DIR:-$REPO/target}/release/coracle"
if [[ -z "${NO_BUILD:-}" ]]; then
	step "cargo build --release -p coracle-cli"
	ensure_cargo
	(cd "$REPO" && cargo build --release -p coracle-cli)
fi
[[ -x $CORACLE ]] || die "$CORACLE is missing (build it, or unset NO_BUILD)"

step "images: base + $LAYERS x $LAYER_MB MiB (a), and a + 1 layer (b)"
"$REPO/scripts/mkimage.sh" "$WORK/layout" a --seed bench --layers "$LAYERS" --layer-mb "$LAYER_MB" >/dev/null
"$REPO/scripts/mkimage.sh" "$WORK/layout" b --seed bench --layers "$((LAYERS + 1))" --layer-mb "$LAYER_MB" >/dev/null

step "registry on 127.0.0.1"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null || die "the registry did not start: $(cat "$WORK/registry.log")"
REG=127.0.0.1:$PORT
for tag in a b; do
	skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:$tag" "docker://$REG/bench/img:$tag"
done
IMAGE_BYTES=$(du -sb "$WORK/registry" | cut -f1)

# One timed run: TOOL PHASE -> prints milliseconds. PHASE is "first" (empty store, pull a)
# or "second" (store holding a, pull b). Set-up outside the timed part.
now_ms() { date +%s%3N; }
run_tool() {
	local tool=$1 phase=$2 dir="$WORK/run/$1" t0 t1
	if [[ $phase == first ]]; then
		rm -rf "$dir" && mkdir -p "$dir"
	fi
	case $tool in
	coracle)
		local tag=a
		[[ $phase == second ]] && tag=b
		t0=$(now_ms)
		"$CORACLE" --root "$dir/root" pull -q "$REG/bench/img:$tag" >/dev/null
		t1=$(now_ms)
		;;
	skopeo-umoci)
		local tag=a
		[[ $phase == second ]] && tag=b
		t0=$(now_ms)
		skopeo copy -q --src-tls-verify=false "docker://$REG/bench/img:$tag" "oci:$dir/layout:$tag"
		umoci unpack --image "$dir/layout:$tag" "$dir/bundle-$tag" >/dev/null
		t1=$(now_ms)
		;;
	podman)
		local tag=a
		[[ $phase == second ]] && tag=b
		t0=$(now_ms)
		podman --root "$dir/root" --runroot "$dir/run" --storage-driver overlay \
			--cgroup-manager cgroupfs --events-backend none \
			pull -q --tls-verify=false "$REG/bench/img:$tag" >/dev/null
		t1=$(now_ms)
		;;
	esac
	echo $((t1 - t0))
}

# Podman's overlay store leaves its storage mounted (a tmpfs/overlay for the run root) after a
# pull; unmount what lies under the run dir before removing it.
reset_tool() {
	local dir="$WORK/run/$1" m
	if [[ $1 == podman && -d $dir ]]; then
		podman --root "$dir/root" --runroot "$dir/run" --storage-driver overlay system reset -f >/dev/null 2>&1 || true
	fi
	for m in $(mounts_under "$dir" | sort -r); do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$dir"
}

step "timing: $ROUNDS rounds, tools interleaved: ${TOOLS[*]}"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
declare -A FAILED=()
for ((round = 0; round <= ROUNDS; round++)); do
	for tool in "${TOOLS[@]}"; do
		[[ -n ${FAILED[$tool]:-} ]] && continue
		for phase in first second; do
			if ! ms=$(run_tool "$tool" "$phase" 2>"$WORK/$tool.err"); then
				FAILED[$tool]="$(tail -3 "$WORK/$tool.err" | tr '\n' ' ')"
				echo "  $tool failed: ${FAILED[$tool]}"
				break
			fi
			# Round 0 warms caches and is not recorded.
			((round > 0)) && printf '%s\t%s\t%s\n' "$tool" "$phase" "$ms" >>"$RESULTS"
			echo "  round $round $tool $phase: $ms ms"
		done
		reset_tool "$tool"
	done
done

FAILED_ARGS=()
for tool in "${!FAILED[@]}"; do FAILED_ARGS+=("$tool=${FAILED[$tool]}"); done
step "results"
python3 - "$RESULTS" "$REPO/bench/RESULTS.md" "$IMAGE_BYTES" "$LAYERS" "$LAYER_MB" "$ROUNDS" \
	"$(podman --version 2>/dev/null || echo podman n/a); $(skopeo --version); $(umoci --version)" \
	"${FAILED_ARGS[@]}" <<'EOF'
import statistics, sys, datetime, platform, os
results, out, image_bytes, layers, layer_mb, rounds, versions, *failed = sys.argv[1:]
data = {}
for line in open(results):
    tool, phase, ms = line.split("\t")
    data.setdefault((tool, phase), []).append(int(ms))
tools = sorted({t for t, _ in data}, key=lambda t: ["coracle", "skopeo-umoci", "podman"].index(t) if t in ["coracle", "skopeo-umoci", "podman"] else 9)
med = {k: statistics.median(v) for k, v in data.items()}
BEGIN, END = "<!-- bench/images.sh:begin -->", "<!-- bench/images.sh:end -->"
lines = [BEGIN, "## Image pull + unpack: coracle vs skopeo+umoci vs podman", "",
    f"- date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; machine: {platform.node() and 'this VM'}, {os.cpu_count()} CPUs",
    f"- command: `ROUNDS={rounds} LAYERS={layers} LAYER_MB={layer_mb} bench/images.sh`",
    f"- image `a`: busybox base + {layers} x {layer_mb} MiB incompressible layers ({int(image_bytes)/1e6:.0f} MB in the registry with `b`); "
    "image `b` = `a` + one more layer. Local docker-registry on 127.0.0.1, pushed with skopeo.",
    "- first: empty store, pull `a` until unpacked on disk. second: the store holding `a`, pull `b`.",
    "- tools, interleaved per round, medians of the rounds (round 0 is warm-up): "
    "`coracle pull -q`; `skopeo copy docker:// oci:` + `umoci unpack`; `podman pull` (overlay storage).",
    f"- versions: {versions}", "",
    "| tool | first pull (median ms) | second pull (median ms) | first vs coracle | second vs coracle |",
    "|---|---|---|---|---|"]
for t in tools:
    f, s = med.get((t, "first")), med.get((t, "second"))
    cf, cs = med.get(("coracle", "first")), med.get(("coracle", "second"))
    r1 = f"{f / cf:.2f}x" if f and cf else "n/a"
    r2 = f"{s / cs:.2f}x" if s and cs else "n/a"
    lines.append(f"| {t} | {f:.0f} | {s:.0f} | {r1} | {r2} |" if f and s else f"| {t} | {f} | {s} | {r1} | {r2} |")
for f in failed:
    name, _, why = f.partition("=")
    lines.append(f"| {name} | failed: {why.strip()} | | | |")
lines += ["", "Ratios > 1 mean the other tool took longer than coracle.", END]
section = "\n".join(lines) + "\n"
text = open(out).read() if os.path.exists(out) else "# Benchmark results\n"
if BEGIN in text and END in text:
    pre, rest = text.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    text = pre + section.rstrip("\n") + post
else:
    text = text.rstrip("\n") + "\n\n" + section
open(out, "w").write(text)
print(section)
EOF
