# syntax=docker/dockerfile:1
# Hubbub in a container: built with the Rust toolchain, run from an image of nothing but the binary
# and the glibc it links to, as a non-root user.
# `docker build -t hubbub . && docker run -p 8080:8080 -v hubbub-data:/data hubbub`
# CI lints this file with hadolint and `.ci/container-test` builds it and runs the image under podman:
# health check, uid 10001, SIGTERM, the volume across containers, and shared mode on the host network.

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
# Cargo.toml keeps line tables in release builds for profiling; the image needs none of that (it
# took the binary from 20 MB to 115 MB). Set here, so the cached dependencies are built the same way.
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=symbols
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

# The runtime's whole file system, gathered here: the binary, the parts of glibc it links to (ldd
# names them), the user it runs as, an empty /tmp for SQLite, and the data directory it owns.
# Templates and static files are inside the binary; it needs no TLS roots (it speaks no TLS) and no
# shell (the healthcheck is the binary itself).
FROM debian:bookworm-slim AS rootfs
# A missing library must fail the build, not vanish in the pipe.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=builder /build/target/release/hubbub /rootfs/usr/local/bin/hubbub
RUN ldd /rootfs/usr/local/bin/hubbub | grep -o '/[^ ]*' | xargs -I '{}' cp --parents -L '{}' /rootfs \
    && mkdir -p /rootfs/etc /rootfs/data /rootfs/tmp \
    && echo 'hubbub:x:10001:10001:hubbub:/data:/usr/sbin/nologin' >/rootfs/etc/passwd \
    && echo 'hubbub:x:10001:' >/rootfs/etc/group \
    && chown 10001:10001 /rootfs/data \
    && chmod 1777 /rootfs/tmp

# Nothing but the above: about 25 MB, where a bookworm-slim base alone is 75 MB.
FROM scratch AS runtime
COPY --from=rootfs /rootfs /
# Numeric, so orchestrators can verify it is not root without reading /etc/passwd.
USER 10001:10001
WORKDIR /data
# Every address in the container, the port a platform sets in PORT, and the SQLite file in the volume.
ENV HUBBUB_HOST=0.0.0.0 \
    PORT=8080 \
    DATABASE_URL=sqlite:/data/hubbub.db
VOLUME ["/data"]
EXPOSE 8080
# The binary asks its own /healthz. `.ci/container-test` builds this image and waits for this check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 CMD ["/usr/local/bin/hubbub", "healthcheck"]
# SIGTERM (the runtime's stop signal) closes connections with 1012 and writes storage before exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hubbub"]
