#!/usr/bin/env bash
# Installs the system packages lwsgate builds against, when they are missing.
# As root it uses apt-get (Debian/Ubuntu); otherwise it says what to install.
set -euo pipefail

pkgs=(libwebsockets-dev libssl-dev pkg-config gcc make libev-dev libwebsockets-evlib-ev)
need=()
if pkg-config --exists libwebsockets 2>/dev/null; then
	# libwebsockets-dev brings both on Debian; a libwebsockets from
	# elsewhere may not. libev: the binding links it for the loop it runs
	# lws on (lws.EventLoopLibev, the default); lws' libev support is a
	# plugin lws loads from its libdir at run time.
	[ -e /usr/include/ev.h ] || need+=(libev-dev)
	[ -e "$(pkg-config --variable=libdir libwebsockets)/libwebsockets-evlib_ev.so" ] ||
		need+=(libwebsockets-evlib-ev)
else
	need+=(libwebsockets-dev libssl-dev pkg-config libev-dev libwebsockets-evlib-ev)
fi
command -v gcc >/dev/null || need+=(gcc)
if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
	# Debian's Go is older than go.mod asks for; the go command then fetches
	# the right toolchain through the Go module proxy (GOTOOLCHAIN=auto).
	need+=(golang-go ca-certificates)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "missing system packages; run: sudo apt-get install -y ${need[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}" >&2
: "${pkgs[@]}"
