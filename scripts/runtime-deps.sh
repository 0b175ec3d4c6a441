#!/usr/bin/env bash
# Runtime packages of a dynamically linked binary, for the Docker image.
#
#   runtime-deps.sh list BINARY...    (build stage: where the -dev packages are)
#       prints the Debian packages that own the shared libraries BINARY needs
#       (libwebsockets17 on bookworm, libwebsockets19t64 on trixie, libc6, ...),
#       (objdump -p NEEDED -> ldd path -> dpkg -S), so the name follows the
#       libwebsockets-dev the build linked against; and the package of the
#       libev plugin libwebsockets loads at run time (libwebsockets-evlib-ev).
#   runtime-deps.sh install LISTFILE BINARY...    (runtime stage, as root)
#       apt-get installs the packages in LISTFILE plus ca-certificates, cleans
#       apt's lists, and fails if BINARY still has an unresolved library.
set -euo pipefail
export LC_ALL=C

list() {
	local bin lib path needed pkgs=()
	for bin in "$@"; do
		# the binary's own DT_NEEDED entries (apt brings their dependencies),
		# each resolved to a path by ldd, each path to its package by dpkg
		needed=$(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }')
		while read -r lib path; do
			grep -qxF "$lib" <<<"$needed" || continue
			[ -n "$path" ] || { echo "runtime-deps: $bin: $lib not found" >&2; exit 1; }
			# dpkg may know the file under /usr/lib or /lib (merged /usr)
			pkgs+=("$( { dpkg-query -S "$path" || dpkg-query -S "/usr${path#/usr}" || dpkg-query -S "${path#/usr}"; } 2>/dev/null | sed -n '1s/:.*//p')")
			[ -n "${pkgs[-1]}" ] || { echo "runtime-deps: no package owns $path" >&2; exit 1; }
		done < <(ldd "$bin" | awk '$2 == "=>" { print $1, ($3 == "not" ? "" : $3) }')
	done
	# libwebsockets' libev support is a plugin it loads at run time (the
	# binding's default loop, lws.EventLoopLibev), not a library the
	# binary names: libwebsockets-evlib-ev
	path=$(pkg-config --variable=libdir libwebsockets)/libwebsockets-evlib_ev.so
	if [ -e "$path" ]; then
		pkgs+=("$(dpkg-query -S "$path" 2>/dev/null | sed -n '1s/:.*//p')")
		[ -n "${pkgs[-1]}" ] || { echo "runtime-deps: no package owns $path" >&2; exit 1; }
	fi
	printf '%s\n' "${pkgs[@]}" | sort -u
}

install() {
	local listfile=$1; shift
	mapfile -t pkgs < <(grep -v '^[[:space:]]*$' "$listfile")
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${pkgs[@]}" ca-certificates >/dev/null
	rm -rf /var/lib/apt/lists/*
	echo "runtime-deps: installed ${pkgs[*]} ca-certificates" >&2
	local bin
	for bin in "$@"; do
		if ldd "$bin" | grep -q 'not found'; then
			ldd "$bin" >&2; echo "runtime-deps: $bin has unresolved libraries" >&2; exit 1
		fi
	done
}

case "${1:-}" in
list) shift; [ $# -gt 0 ] || { echo "usage: $0 list BINARY..." >&2; exit 2; }; list "$@" ;;
install) shift; [ $# -gt 0 ] || { echo "usage: $0 install LISTFILE [BINARY...]" >&2; exit 2; }; install "$@" ;;
*) echo "usage: $0 list BINARY... | install LISTFILE [BINARY...]" >&2; exit 2 ;;
esac
