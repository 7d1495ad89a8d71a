# syntax=docker/dockerfile:1
# scarecrow: synthetic monitoring daemon.
#   docker build -t scarecrow .
#   docker run -p 9787:9787 -v "$PWD/checks:/etc/scarecrow/checks:ro" \
#     -v "$PWD/api_token:/run/secrets/scarecrow_api_token:ro" -v scarecrow-data:/var/lib/scarecrow scarecrow
# The store lives in the volume /var/lib/scarecrow, the only directory the
# image's user owns (deploy/container-config.toml; tests/container.rs runs
# the binary that way as an unprivileged user).

FROM rust:1.95-bookworm AS builder
# aws-lc-rs (rustls' crypto) compiles C with the image's gcc; nothing else is needed.
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin scarecrow

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/scarecrow --shell /usr/sbin/nologin scarecrow \
 && mkdir -p /etc/scarecrow/checks /var/lib/scarecrow \
 && chown scarecrow /var/lib/scarecrow
COPY --from=builder /src/target/release/scarecrow /usr/local/bin/scarecrow
COPY deploy/container-config.toml /etc/scarecrow/config.toml
COPY checks /etc/scarecrow/checks
USER scarecrow
WORKDIR /var/lib/scarecrow
VOLUME ["/var/lib/scarecrow"]
EXPOSE 9787
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["scarecrow", "healthcheck", "--url", "http://127.0.0.1:9787/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["scarecrow"]
CMD ["run", "--config", "/etc/scarecrow/config.toml"]
