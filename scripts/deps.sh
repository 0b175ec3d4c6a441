#!/usr/bin/env bash
# Installs the system packages lwsgate builds against, when they are missing.
# As root it uses apt-get (Debian/Ubuntu); otherwise it says what to install.
set -euo pipefail

pkgs=(libwebsockets-dev libssl-dev pkg-config gcc make)
need=()
pkg-config --exists libwebsockets 2>/dev/null || need+=(libwebsockets-dev libssl-dev pkg-config)
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
