#!/usr/bin/env bash
# A stand-in for the Bento's base image, python:3.11-slim, for machines that reach no container
# registry but do reach a Debian mirror and the Python package index (as the test machines):
# Debian bookworm (python3 is 3.11 there) from debootstrap, imported into podman under the name
# the Bento's Dockerfile pulls. Built only when that name is missing.
#
#   scripts/standin-base.sh [image name]     (default docker.io/library/python:3.11-slim)
#
# Only the tests' images are built on it; the Bento's Dockerfile stays BentoML's.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF="$PWD/scripts/containers.conf"
IMAGE=${1:-docker.io/library/python:3.11-slim}

if podman image exists "$IMAGE"; then
    exit 0
fi

# The bookworm mirror apt uses on this machine (a proxy or snapshot where there is one).
MIRROR=${DEBIAN_MIRROR:-$(apt-cache policy | awk '$3 == "bookworm/main" && $NF == "Packages" {print $2; exit}')}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

root=$(mktemp -d /var/tmp/standin-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "standin-base: debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
    bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"

# python:3.11-slim has no package lists, caches or docs, and lets pip install into the system.
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/usr/share/locale/*
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED

# This machine's CA bundle, so that pip, uv and apt inside builds reach the package index
# through whatever TLS-inspecting proxy this machine trusts.
# (update-ca-certificates warns that the file holds more than one certificate, and adds them all.)
cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/build-host-bundle.crt"
chroot "$root" update-ca-certificates >/dev/null 2>&1

tar -C "$root" -c . | podman import \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV UV_SYSTEM_CERTS=1' \
    --change 'CMD ["python3"]' \
    --quiet - "$IMAGE" >/dev/null
echo "standin-base: $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
