#!/usr/bin/env bash
# Enforces the package layout: callbacks imports nothing from the module,
# cgo only callbacks, lws only cgo and callbacks, lws/gateway/cluster
# (the cluster engine, NATS) nothing, lws/gateway only lws and
# lws/gateway/cluster, cmd/* only lws, lws/gateway and the commands' own
# helpers under cmd/internal (which import only lws). internal/testutil,
# what tests share across packages, imports nothing from the module; the
# commands that drive tests may import it, lwsgate not. (Tests' own
# imports are not checked.)
set -euo pipefail
mod=$(go list -m)
fail=0
check() { # package, allowed module imports (space separated)
	local pkg=$1; shift
	for imp in $(go list -f '{{join .Imports " "}}' "$pkg"); do
		case $imp in
		"$mod"/*)
			ok=0
			for a in "$@"; do [ "$imp" = "$mod/$a" ] && ok=1; done
			if [ $ok = 0 ]; then echo "$pkg must not import $imp" >&2; fail=1; fi
			;;
		esac
	done
}
check "$mod/internal/testutil"
check "$mod/callbacks"
check "$mod/cgo" callbacks
check "$mod/lws" cgo callbacks
check "$mod/lws/gateway/cluster" # knows nothing of libwebsockets
check "$mod/lws/gateway" lws lws/gateway/cluster   # the gateway is a program on the public API
internal=$(go list "$mod/cmd/internal/..." 2>/dev/null | sed "s|^$mod/||")
for p in $(go list "$mod/cmd/..."); do
	case $p in
	"$mod"/cmd/internal/*) check "$p" lws ;;
	"$mod"/cmd/lwsgate) check "$p" lws lws/gateway $internal ;;
	*) check "$p" lws lws/gateway $internal internal/testutil ;;
	esac
done
exit $fail
