#!/usr/bin/env bash
# The performance harness (issue 6): builds the reference servers, lwsgate and
# the load tool into $BENCH_BIN (default bin/bench), raises the open-file
# limit for the idle scenario, then runs bench/cmd/benchrun with the
# arguments given (see bench/README.md; e.g. -quick, -rounds 3 -d 3s,
# -servers lws,lwsgate, -scenarios big-64k, -out BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${BENCH_BIN:-bin/bench}
CFLAGS="-Wall -Wextra -Werror -O2"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # absolute: the load tool is built from bench/

command -v taskset >/dev/null || { echo "bench: taskset not found (apt-get install util-linux)" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then
	echo "bench: needs 2 CPUs (server on one, load on the other); this machine has $(nproc)" >&2
	exit 1
fi

# shellcheck disable=SC2046 # pkg-config output is meant to be split
gcc $CFLAGS $(pkg-config --cflags libwebsockets) bench/servers/lwsecho.c \
	$(pkg-config --libs libwebsockets) -pthread -o "$OUT/lwsecho"
# shellcheck disable=SC2046
gcc $CFLAGS $(pkg-config --cflags libcrypto) bench/servers/epollecho.c \
	$(pkg-config --libs libcrypto) -o "$OUT/epollecho"
"$GO" build -ldflags "${LWSGATE_LDFLAGS:-}" -o "$OUT/lwsgate" ./cmd/lwsgate
(cd bench && "$GO" build -o "$OUT/" ./cmd/...)

# lwsgate runs at its default configuration, but without its limits on
# links from one address (256 at once, 1,000 accepts a second, 10,000 in
# all): all the load comes from 127.0.0.1, and no other server limits it.
# The default config may name these limits itself: its lines go first.
benchconfig() { # lwsgate binary, output file
	"$1" defaultconfig |
		sed -e '/^      \(max_links\|max_links_per_ip\|accept_rate\):/d' \
			-e '/^    limits:$/a\      max_links: -1          # make bench: no limits on links from one address\n      max_links_per_ip: -1\n      accept_rate: -1' \
		>"$2"
	"$1" checkconfig "$2" >/dev/null
	grep -q 'max_links_per_ip: -1' "$2" ||
		{ echo "bench: could not lift lwsgate's link limits in $2" >&2; exit 1; }
}
benchconfig "$OUT/lwsgate" "$OUT/lwsgate.yaml"

# BENCH_BASE=rev: also build lwsgate and lwspkgecho from an earlier
# revision (a temporary git worktree) into $OUT/base, with that build's
# own default config made the same way, and measure them in the same
# interleaved run (lwsgate-base, lws-pkg-base): a change's cost is then a
# ratio from one run, not two runs on a machine whose load moved between
# them.
base_args=()
if [ -n "${BENCH_BASE:-}" ]; then
	rev=$(git rev-parse --verify "$BENCH_BASE^{commit}")
	wt=$(mktemp -d)
	trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || true' EXIT
	git worktree add --detach "$wt" "$rev" >/dev/null
	mkdir -p "$OUT/base"
	base=$(cd "$OUT/base" && pwd)
	(cd "$wt" && "$GO" build -ldflags "-X main.version=$(git rev-parse --short "$rev")" -o "$base/lwsgate" ./cmd/lwsgate)
	(cd "$wt/bench" && "$GO" build -o "$base/lwspkgecho" ./cmd/lwspkgecho)
	benchconfig "$base/lwsgate" "$base/lwsgate.yaml"
	base_args=(-base "$base")
fi

# 10,000 idle links need more than 10,000 descriptors in the server and in
# the load tool. Raise the soft limit as far as the hard limit allows;
# benchrun checks it is enough for -idle-links and says so if not.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then want=65536; else want=$hard; fi
ulimit -n "$want" 2>/dev/null || echo "bench: could not raise the open-file limit to $want (now $(ulimit -n))" >&2

"$OUT/benchrun" -bin "$OUT" "${base_args[@]}" "$@"
