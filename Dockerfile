# syntax=docker/dockerfile:1
# lwsgate image. SUITE picks the Debian suite of both stages:
#   bookworm (default; what CI tests): libwebsockets 4.1.6
#   trixie:                            libwebsockets 4.3.5
# make docker [SUITE=trixie] builds it; make docker-check verifies both suites
# without a Docker engine (README, "Docker").
ARG SUITE=bookworm

# ---- build: the same Makefile targets and scripts CI runs ---------------------
FROM golang:1.26-${SUITE} AS build
ARG SUITE
WORKDIR /src
# libwebsockets-dev (with libev-dev and libwebsockets-evlib-ev), libssl-dev,
# pkg-config: scripts/deps.sh via `make deps`,
# as `make test` does in CI (a layer of its own, kept while these two files stay)
COPY Makefile ./
COPY scripts/deps.sh scripts/
RUN make deps
COPY . .
# .git is not sent (.dockerignore): `make docker` passes git describe here
ARG VERSION=dev
RUN --mount=type=cache,id=lwsgate-gomod,target=/go/pkg/mod \
    --mount=type=cache,id=lwsgate-gobuild-${SUITE},target=/root/.cache/go-build \
    make build VERSION="${VERSION}" \
 && bin/lwsgate -version \
 && scripts/runtime-deps.sh list bin/lwsgate >bin/runtime-packages \
 && cat bin/runtime-packages

# ---- runtime: the shared libraries the binary links, nothing else -------------
FROM debian:${SUITE}-slim
ARG VERSION=dev
LABEL org.opencontainers.image.title="lwsgate" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /src/bin/lwsgate /usr/local/bin/lwsgate
COPY scripts/healthcheck.sh /usr/local/bin/lwsgate-healthcheck
# runtime-packages is what the build stage's dpkg says owns each library the
# binary needs (libwebsockets17 on bookworm, libwebsockets19t64 on trixie)
# and the libev plugin libwebsockets loads (libwebsockets-evlib-ev)
RUN --mount=type=bind,from=build,source=/src/bin,target=/run/lwsgate-build \
    --mount=type=bind,source=scripts,target=/run/lwsgate-scripts \
    /run/lwsgate-scripts/runtime-deps.sh install /run/lwsgate-build/runtime-packages /usr/local/bin/lwsgate \
 && groupadd --gid 10001 lwsgate \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin lwsgate
USER 10001:10001
EXPOSE 8090
# GET /healthz over bash's /dev/tcp (no curl in -slim); when -listen moves the
# port, set LWSGATE_HEALTH_ADDR=127.0.0.1:PORT
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["lwsgate-healthcheck"]
ENTRYPOINT ["lwsgate"]
CMD ["-listen", ":8090"]
