#!/usr/bin/env bash
# Installs the Debian packages the product's real components need (Prometheus; Chromium for UI tests)
# when they are missing and we may install them; otherwise says what is missing and carries on.
set -uo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${need[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
    || echo "warning: could not install ${need[*]}; the tests that need them will be skipped" >&2
else
  echo "warning: missing ${need[*]} (install with: sudo apt-get install -y ${need[*]})" >&2
fi
exit 0
