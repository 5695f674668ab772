# syntax=docker/dockerfile:1
# Hubbub in a container: built with the Rust toolchain, run from a small Debian image as a non-root user.
# `docker build -t hubbub . && docker run -p 8080:8080 -v hubbub-data:/data hubbub`

ARG RUST_VERSION=1.95

# cargo-chef turns the dependency graph into a recipe, so dependencies build in their own cached layer
# and only change when Cargo.toml or Cargo.lock do.
FROM rust:${RUST_VERSION}-slim-bookworm AS chef
# The slim image has gcc but not make, which jemalloc's build (tikv-jemalloc-sys) runs. Debian
# stable's make, unpinned: a pinned version breaks the build when the archive moves on.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /build

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /build/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin hubbub
COPY Cargo.toml Cargo.lock ./
# The workspace's other member: cargo reads its manifest to resolve the workspace, builds none of it.
COPY bench bench
COPY src src
COPY templates templates
COPY static static
RUN cargo build --release --locked --bin hubbub

FROM debian:bookworm-slim AS runtime
RUN groupadd --system --gid 10001 hubbub \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin hubbub \
    && mkdir /data && chown 10001:10001 /data
COPY --from=builder /build/target/release/hubbub /usr/local/bin/hubbub
# Numeric, so orchestrators can verify it is not root without reading /etc/passwd.
USER 10001:10001
WORKDIR /data
# Every address in the container, the port a platform sets in PORT, and the SQLite file in the volume.
ENV HUBBUB_HOST=0.0.0.0 \
    PORT=8080 \
    DATABASE_URL=sqlite:/data/hubbub.db
VOLUME ["/data"]
EXPOSE 8080
# No curl in the image: the binary asks its own /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 CMD ["hubbub", "healthcheck"]
# SIGTERM (the runtime's stop signal) closes connections with 1012 and writes storage before exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["hubbub"]
