#!/usr/bin/env bash
# (A copy of the team's shared container/podman-local.sh, so that CI in a fresh clone has it.)
# Build and run this project's container image for real on a machine that reaches Debian's package
# archive and crates.io but no container registry.
#
#   .ci/podman-local.sh setup          # once per machine: podman, runc, base images
#   .ci/podman-local.sh podman ARGS…   # podman with the settings this machine needs
#
# `setup` installs podman and runc from Debian, then makes the two base images the Dockerfile names
# locally, under the names a registry would give them, so `FROM` resolves without a pull:
#   docker.io/library/debian:bookworm-slim         a minimal Debian 12 root file system (mmdebstrap)
#   docker.io/library/rust:<version>-slim-bookworm   the same plus gcc, libc6-dev, ca-certificates and
#                                                    this machine's Rust toolchain at the official
#                                                    image's paths (RUSTUP_HOME, CARGO_HOME)
# The toolchain version is the one `rustc --version` reports here (override: RUST_VERSION=1.95).
# Builds need `--network host` so that cargo and apt-get inside them reach the registries, and
# `--format docker` so that the image keeps the Dockerfile's HEALTHCHECK (the OCI format drops it):
#   .ci/podman-local.sh podman build --format docker --network host -t hubbub .
#
# podman schedules periodic health checks through systemd, which is absent here (it logs that it
# cannot): run one with `… podman healthcheck run NAME`, which exits 0 when the check passes.
#
# The rust image also carries this machine's trusted certificate authorities (public certificates),
# since the registries are reached through this machine's TLS set-up.
#
# Why the wrapper: this machine's kernel refuses the resource limits podman writes into every
# container's spec, and mounts cgroups in hybrid mode, which crun rejects. So containers run under
# runc, with cgroupfs, from a copy of the spec without `process.rlimits`.
set -euo pipefail
state=${PODMAN_LOCAL_STATE:-/var/lib/podman-local}
runtime="$state/runc"

podman_cmd() {
    exec podman --runtime "$runtime" --cgroup-manager cgroupfs "$@"
}

write_runtime() {
    mkdir -p "$state"
    cat >"$runtime" <<'RT'
#!/usr/bin/env bash
# `create`/`run` read the spec from the bundle's config.json; `exec` (and so `healthcheck run`) reads
# a process spec from --process FILE. Drop the rlimits from whichever this call uses.
args=("$@"); specs=()
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
        --bundle | -b) specs+=("${args[$((i + 1))]}/config.json") ;;
        --bundle=*) specs+=("${args[$i]#--bundle=}/config.json") ;;
        --process | -p) specs+=("${args[$((i + 1))]}") ;;
        --process=*) specs+=("${args[$i]#--process=}") ;;
    esac
done
for spec in "${specs[@]}"; do
    [ -f "$spec" ] || continue
    python3 - "$spec" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec.pop("rlimits", None)
spec.get("process", {}).pop("rlimits", None)
json.dump(spec, open(path, "w"))
PY
done
exec /usr/sbin/runc "$@"
RT
    chmod +x "$runtime"
}

# The registries are reached through this machine's TLS set-up: give an image root the same trusted
# certificate authorities as the host (public certificates only), so cargo and pip inside a build
# can reach them as they do outside.
trust_host_cas() {
    local root=$1
    mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
    cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
}

setup() {
    if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v mmdebstrap >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap >/dev/null
    fi
    write_runtime
    local p=(podman --runtime "$runtime" --cgroup-manager cgroupfs)
    local mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
    if ! "${p[@]}" image exists docker.io/library/debian:bookworm-slim; then
        mmdebstrap --variant=minbase bookworm "$state/debian.tar" "$mirror"
        "${p[@]}" import --change 'CMD ["bash"]' "$state/debian.tar" docker.io/library/debian:bookworm-slim
        rm -f "$state/debian.tar"
    fi
    local version=${RUST_VERSION:-$(rustc --version | awk '{print $2}' | cut -d. -f1,2)}
    local image="docker.io/library/rust:${version}-slim-bookworm"
    if ! "${p[@]}" image exists "$image"; then
        local root="$state/rust-root"
        rm -rf "$root"
        mmdebstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev bookworm "$root" "$mirror"
        local toolchain
        toolchain=$(rustc --print sysroot)
        mkdir -p "$root/usr/local/rustup/toolchains" "$root/usr/local/cargo/bin"
        cp -a "$toolchain" "$root/usr/local/rustup/toolchains/stable-x86_64-unknown-linux-gnu"
        echo 'default_toolchain = "stable-x86_64-unknown-linux-gnu"' >"$root/usr/local/rustup/settings.toml"
        printf 'version = "12"\nprofile = "minimal"\n' >>"$root/usr/local/rustup/settings.toml"
        for tool in cargo rustc rustdoc rustfmt cargo-clippy clippy-driver; do
            [ -e "$toolchain/bin/$tool" ] && ln -s "/usr/local/rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/$tool" "$root/usr/local/cargo/bin/$tool"
        done
        trust_host_cas "$root"
        tar -C "$root" -cf "$state/rust.tar" .
        "${p[@]}" import \
            --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
            --change 'ENV CARGO_HOME=/usr/local/cargo' \
            --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' \
            "$state/rust.tar" "$image"
        rm -rf "$root" "$state/rust.tar"
    fi
    "${p[@]}" images
}

case "${1:-}" in
    setup) setup ;;
    podman) shift; write_runtime; podman_cmd "$@" ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
esac
