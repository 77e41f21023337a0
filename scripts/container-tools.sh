#!/usr/bin/env bash
# Podman for the container tests (tests/container) and benchmarks/image.py: installs the Debian
# packages when missing (needs root), then checks that podman runs with scripts/containers.conf.
# Idempotent: when everything is there it only checks, in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# podman and runc (its runtime here), catatonit (the pause process of pods), debootstrap (the
# stand-in base image, scripts/standin-base.sh).
PACKAGES=(podman runc catatonit debootstrap)

missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "container-tools: installing ${missing[*]} needs root (apt-get)" >&2
        exit 1
    fi
    echo "container-tools: installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

export CONTAINERS_CONF="$PWD/scripts/containers.conf"
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}')
if [ "$runtime" != "runc cgroupfs" ]; then
    echo "container-tools: podman runs with '$runtime', expected 'runc cgroupfs' from $CONTAINERS_CONF" >&2
    exit 1
fi
echo "container-tools: $(podman --version), runtime $runtime"
