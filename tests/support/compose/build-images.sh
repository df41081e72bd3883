#!/usr/bin/env bash
# Builds the images the compose test runs, without a registry, and prints them as
# NAME=image lines for `docker compose` (POSTGRES_IMAGE, HAPROXY_IMAGE, BRIDGEHEAD_IMAGE):
#   - a Debian base: debootstrap (Debian's mirror) + docker import;
#   - PostgreSQL and HAProxy from Debian's packages on it (postgres/, haproxy/);
#   - Bridgehead from deploy/Dockerfile's `prebuilt` target, with the binary given.
# Base and package images are tagged by a hash of what made them, so a second run on the same
# machine builds nothing again. Usage: build-images.sh BRIDGEHEAD_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
binary=$1
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
digest() { sha256sum | cut -c1-12; }

base="bridgehead-test/debian:$(echo "$suite $mirror minbase 1" | digest)"
if ! docker image inspect "$base" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { echo "debootstrap is needed (apt-get install debootstrap)" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >&2
  tar -C "$work/rootfs" -c . | docker import - "$base" >&2
  rm -rf "$work"
  trap - EXIT
fi

image() { # name dir -> tag, built once per content
  local tag
  tag="bridgehead-test/$1:$( (echo "$base"; cat "$here/$1"/*) | digest)"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    docker build -q -t "$tag" --build-arg BASE="$base" "$here/$1" >&2
  fi
  echo "$tag"
}
postgres=$(image postgres)
haproxy=$(image haproxy)

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/bridgehead"
docker build -q -f "$root/deploy/Dockerfile" --target prebuilt --build-arg BASE="$base" \
  -t bridgehead-test/bridgehead:latest "$context" >&2

echo "POSTGRES_IMAGE=$postgres"
echo "HAPROXY_IMAGE=$haproxy"
echo "BRIDGEHEAD_IMAGE=bridgehead-test/bridgehead:latest"
