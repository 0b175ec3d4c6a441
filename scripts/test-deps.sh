#!/usr/bin/env bash
# Installs what only the tests need, when missing:
#   - Debian's chromium, which the demo page's end-to-end test and the
#     interop matrix (cmd/interop) drive headless;
#   - the matrix's other clients: Debian's python3-websockets, Debian's
#     nodejs and npm (when there is no node), and Node's ws package at the
#     version cmd/interop/clients/package-lock.json pins, installed with
#     npm ci into cmd/interop/clients/node_modules (the tests' own
#     directory, ignored by git).
# Kept apart from deps.sh so that the Docker build (make deps) pulls none
# of it.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null || need+=(chromium fonts-liberation)
# Debian's python3: another python3 first in PATH may not see the package
/usr/bin/python3 -c 'import websockets' 2>/dev/null || need+=(python3-websockets)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing test packages; run: sudo apt-get install -y ${need[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	echo "installed: ${need[*]}" >&2
fi

clients=$PWD/cmd/interop/clients
want=$(node -p "require('$clients/package-lock.json').packages['node_modules/ws'].version")
have=$(node -p "require('$clients/node_modules/ws/package.json').version" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
	(cd "$clients" && npm ci --no-audit --no-fund --loglevel=error)
	echo "installed: ws $want (npm ci in cmd/interop/clients)" >&2
fi
