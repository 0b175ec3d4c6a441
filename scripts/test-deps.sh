#!/usr/bin/env bash
# Installs what only the tests need, when missing: Debian's chromium, which
# the demo page's end-to-end test drives headless. Kept apart from deps.sh
# so that the Docker build (make deps) does not pull a browser.
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "missing test package; run: sudo apt-get install -y chromium" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
echo "installed: chromium" >&2
