#!/usr/bin/env bash
# Installs every Debian package TaskMoE needs. Idempotent: silent and fast when all is present.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap bazel-platforms bazel-rules-java bazel-skylib
  g++ libtorch-dev libopenblas0-openmp
  libabsl-dev libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev
  libeigen3-dev libgtest-dev libgmock-dev libgloo-dev
  nlohmann-json3-dev libutf8proc-dev libcairo2-dev libgif-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
