# syntax=docker/dockerfile:1
# scarecrow: synthetic monitoring daemon.
#   docker build -t scarecrow .
#   docker run -p 9787:9787 -v "$PWD/checks:/etc/scarecrow/checks:ro" \
#     -v "$PWD/api_token:/run/secrets/scarecrow_api_token:ro" -v scarecrow-data:/var/lib/scarecrow scarecrow
# The store lives in the volume /var/lib/scarecrow, the only directory the
# image's user owns (deploy/container-config.toml; tests/container.rs runs
# the binary that way as an unprivileged user).
#
# With Chromium, for checks with browser steps (docs/browser.md):
#   docker build --build-arg BROWSER=true -t scarecrow:browser .
# It adds Chromium, a font (fonts-dejavu-core: without one, text and
# umlauts draw as empty boxes) and tini, which runs as PID 1 and reaps the
# browser's orphaned processes (the daemon reaps only the one it started).
# Size: about 699 MiB more on disk (197 MiB to download), the sum of the
# Installed-Size of the 174 Debian bookworm packages that
# `apt-get install --no-install-recommends chromium fonts-dejavu-core tini`
# adds to debian:bookworm-slim with ca-certificates (apt-get --simulate
# against a dpkg status holding only that base; chromium 156.0.8078.114).
# chromium and chromium-common are 348 MiB of it; Mesa and LLVM, which come
# in through chromium-common's x11-utils, about 160 MiB.
# BuildKit builds only the stage BROWSER picks; the legacy builder builds both.
ARG BROWSER=false

FROM rust:1.95-bookworm AS builder
# aws-lc-rs (rustls' crypto) compiles C with the image's gcc; nothing else is needed.
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin scarecrow

# The runtime's base without a browser (BROWSER=false, the default).
FROM debian:bookworm-slim AS base-false
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/scarecrow --shell /usr/sbin/nologin scarecrow \
 && mkdir -p /etc/scarecrow/checks /var/lib/scarecrow \
 && chown scarecrow /var/lib/scarecrow
ENTRYPOINT ["scarecrow"]

# The same with Chromium (BROWSER=true), installed before the binary is
# copied so a rebuild of scarecrow reuses this layer.
FROM base-false AS base-true
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-dejavu-core tini \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/bin/tini", "--", "scarecrow"]

FROM base-${BROWSER}
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
CMD ["run", "--config", "/etc/scarecrow/config.toml"]
