#!/usr/bin/env bash
# make docker-check: build the Dockerfile for each Debian suite without a Docker
# engine (dockercheck's build-and-run.sh: BuildKit + podman; needs root; the first
# run prepares base images and takes minutes), then in each image
#   1. lwsgate -version      must report the suite's libwebsockets
#   2. a smoke test          lwsgate on :8090, the HEALTHCHECK command, a WebSocket
#                            echo (lwsgate dial) and POST /v1/api/createtoken (lwsgate fetch)
# Usage: scripts/docker-check.sh [SUITE...]   (default: bookworm trixie)
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKERCHECK=${DOCKERCHECK:-../shared/tools/dockercheck/build-and-run.sh}
IMAGE=${IMAGE:-lwsgate}
VERSION=${VERSION:-dev}
[ $# -gt 0 ] || set -- bookworm trixie
[ -x "$DOCKERCHECK" ] || { echo "docker-check: no $DOCKERCHECK (set DOCKERCHECK)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "docker-check: must run as root (rootful podman/BuildKit)" >&2; exit 2; }

# runs inside the image, as its non-root user, with bash as the entrypoint
smoke='set -euo pipefail
lwsgate -trace=false -listen 127.0.0.1:8090 & pid=$!
for _ in $(seq 50); do lwsgate-healthcheck 2>/dev/null && break; sleep 0.1; done
lwsgate-healthcheck && echo "healthcheck: ok"
echo "echo: $(lwsgate dial -trace=false -send "hello world" ws://127.0.0.1:8090/)"
tok=$(lwsgate fetch -trace=false -d "{\"UserName\":\"keda\",\"RequestId\":\"1614738418531\"}" http://127.0.0.1:8090/v1/api/createtoken)
echo "createtoken: ${tok:0:120}..."
case $tok in *"\"token\":\"ey"*) ;; *) echo "no token" >&2; exit 1 ;; esac
kill -TERM $pid; wait $pid; echo "stopped: exit $?"'

for suite in "$@"; do
	case $suite in
	bookworm) want=4.1.6 ;;
	trixie) want=4.3.5 ;;
	*) echo "docker-check: unknown suite $suite (bookworm, trixie)" >&2; exit 2 ;;
	esac
	tag=localhost/$IMAGE:$VERSION-$suite
	args=(--build-arg "SUITE=$suite" --build-arg "VERSION=$VERSION" -t "$tag")
	echo "== $suite: build $tag, lwsgate -version" >&2
	out=$("$DOCKERCHECK" -q "${args[@]}" . -- -version)
	echo "$out"
	grep -q "^libwebsockets $want" <<<"$out" || { echo "docker-check: $suite: want libwebsockets $want" >&2; exit 1; }
	echo "== $suite: smoke test" >&2
	out=$("$DOCKERCHECK" -q "${args[@]}" --entrypoint bash . -- -c "$smoke")
	echo "$out"
	grep -qx 'echo: hello world' <<<"$out" || { echo "docker-check: $suite: no echo" >&2; exit 1; }
	echo "== $suite: ok" >&2
done
