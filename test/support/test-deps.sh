#!/usr/bin/env bash
# Runs before `npm test`: the interop tests call real curl (Connect protocol)
# and Python's grpcio (an independent gRPC implementation); the shared-state
# tests start a real redis-server (Debian's redis-server). Installs them with
# apt-get when missing and permitted; otherwise says exactly what to install.
set -euo pipefail
need=()
command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
/usr/bin/python3 -c "import grpc" >/dev/null 2>&1 || need+=(python3-grpcio)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test prerequisites: apt-get install ${need[*]}" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  exit 0
fi
echo "test prerequisites missing: install Debian packages: ${need[*]} (e.g. sudo apt-get install ${need[*]})" >&2
exit 1
