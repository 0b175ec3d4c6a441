#!/usr/bin/env bash
# Container health check without curl: GET /healthz over bash's /dev/tcp and
# expect a 200 status line. Address: $1, else $LWSGATE_HEALTH_ADDR, else
# 127.0.0.1:8090 (the default -listen :8090).
set -uo pipefail
addr=${1:-${LWSGATE_HEALTH_ADDR:-127.0.0.1:8090}}
host=${addr%:*} port=${addr##*:}
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$addr" >&3
IFS= read -r -t 4 status <&3 || exit 1
exec 3<&-
case $status in
"HTTP/1."[01]" 200 "*) exit 0 ;;
*) echo "healthz: ${status%$'\r'}" >&2; exit 1 ;;
esac
