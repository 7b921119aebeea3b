#!/usr/bin/env bash
# `make arm-env`: build the ARM emulation environment (arm64 Python sysroot, aarch64 wheels, qemu
# instruction-counting plugin) into $EDGEKD_ARM_HOME (default ~/.cache/edgekd/arm). Idempotent:
# ~1.5 min the first time, ~1 s when cached. Runs unattended (CI=true, no stdin).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

# Debian packages it needs; installed only when missing and we are root (CI), never prompting
need=()
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v gcc >/dev/null || need+=(gcc)
command -v xz >/dev/null || need+=(xz-utils)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[arm-env] apt-get install ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" </dev/null >/dev/null
  else
    echo "[arm-env] missing Debian packages: ${need[*]} (apt-get install -y ${need[*]})" >&2
    exit 1
  fi
fi
exec "$PY" -m edgekd.emulate.setup "$@" </dev/null
