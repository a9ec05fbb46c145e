# Multi-stage build: compile with the official Rust image, run on slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && for bench in allocation reprocess durability; do echo 'fn main() {}' > benches/$bench.rs; done \
    && cargo build --release --locked --bin allocation-service || true
COPY src ./src
COPY benches ./benches
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin allocation-service

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/allocation allocation \
    && mkdir -p /var/lib/allocation/data && chown -R allocation /var/lib/allocation
COPY --from=build /src/target/release/allocation-service /usr/local/bin/allocation-service
USER allocation
WORKDIR /var/lib/allocation
VOLUME ["/var/lib/allocation/data"]
ENV ALLOCATION_LISTEN=0.0.0.0:50051 \
    ALLOCATION_METRICS_LISTEN=0.0.0.0:9464 \
    ALLOCATION_DATA_DIR=/var/lib/allocation/data \
    ALLOCATION_LOG_FORMAT=json
EXPOSE 50051 9464
# The service's own binary asks its grpc.health.v1 service.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["allocation-service", "health", "--address", "127.0.0.1:50051"]
# SIGTERM drains and writes a final snapshot; give it time.
STOPSIGNAL SIGTERM
ENTRYPOINT ["allocation-service"]
CMD ["serve"]
