# syntax=docker.io/docker/dockerfile:1
# Multi-stage build: compile with the official Rust image, run on slim Debian.
# Build:  docker build -t allocation-service .
#         podman build --format docker -t allocation-service .   (keeps HEALTHCHECK)
# Run, volume, ports, stop timeout: README.md, "Container".

# At least Cargo.toml's rust-version (1.89).
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The workspace as .dockerignore leaves it: manifests, lock file, build.rs,
# proto/, src/, benches/ (declared in Cargo.toml) and loadtest/ (a member).
COPY . .
# The registry and target/ live in cache mounts, so a source change rebuilds
# only this crate, not its dependencies. The binary is copied out of the
# cache mount, which is not part of the image. Stripped here rather than in
# [profile.release], which keeps line tables for profiling local builds.
RUN --mount=type=cache,id=allocation-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=allocation-target,target=/src/target \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked -p allocation-service --bin allocation-service \
    && install -D -m 0755 target/release/allocation-service /out/allocation-service

FROM docker.io/library/debian:bookworm-slim
LABEL org.opencontainers.image.title="allocation-service" \
      org.opencontainers.image.description="Inventory allocation service for fulfillment networks, over gRPC" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed, numeric uid and gid, so a bind mount can be chown'ed to them and
# Kubernetes' runAsNonRoot can check the user. --no-log-init: no sparse
# lastlog entry for a high uid.
RUN groupadd --gid 10001 allocation \
    && useradd --uid 10001 --gid 10001 --no-create-home --no-log-init \
       --home-dir /var/lib/allocation --shell /usr/sbin/nologin allocation \
    && mkdir -p /var/lib/allocation/data \
    && chown -R 10001:10001 /var/lib/allocation
COPY --from=build /out/allocation-service /usr/local/bin/allocation-service
USER 10001:10001
WORKDIR /var/lib/allocation
VOLUME ["/var/lib/allocation/data"]
ENV ALLOCATION_LISTEN=0.0.0.0:50051 \
    ALLOCATION_METRICS_LISTEN=0.0.0.0:9464 \
    ALLOCATION_DATA_DIR=/var/lib/allocation/data \
    ALLOCATION_LOG_FORMAT=json
EXPOSE 50051 9464
# Asks the service's own grpc.health.v1 on the port ALLOCATION_LISTEN names
# (over loopback: the listen host is usually 0.0.0.0), or at
# ALLOCATION_HEALTH_ADDRESS if set; a shell, for the expansion, and for
# `|| exit 1`: a usage error exits 2, which Docker reserves.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/bin/sh", "-c", "allocation-service health --timeout-seconds 3 --address \"${ALLOCATION_HEALTH_ADDRESS:-127.0.0.1:${ALLOCATION_LISTEN##*:}}\" || exit 1"]
# SIGTERM drains (--drain-timeout-seconds, 10 s) and then writes a final
# snapshot: run with a stop timeout longer than both (README: 60 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["allocation-service"]
CMD ["serve"]
