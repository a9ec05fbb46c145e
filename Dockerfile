# Multi-stage build: compile with the official Rust image, run on slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
# The whole workspace (see .dockerignore): Cargo needs every member's manifest.
COPY . .
RUN cargo build --release --locked -p allocation-service --bin allocation-service

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
