# syntax=docker/dockerfile:1
# Minimal image; the multi-stage Debian-suite build arrives with issue 4.
ARG SUITE=bookworm
FROM golang:1.26-${SUITE} AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh
COPY . .
RUN make build

FROM debian:${SUITE}-slim
RUN apt-get update && apt-get install -y --no-install-recommends libwebsockets17 ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd -r -u 10001 lwsgate
COPY --from=build /src/bin/lwsgate /usr/local/bin/lwsgate
USER lwsgate
EXPOSE 8090
ENTRYPOINT ["lwsgate"]
