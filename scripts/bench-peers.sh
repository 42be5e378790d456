#!/usr/bin/env bash
# Installs the peer servers `bench -- sse` compares against (`make bench-peers`, not part of `make setup`):
# Debian's nginx with the nchan module. Only what is missing; as root, or through sudo when it is there,
# otherwise prints the exact command. The packaged nginx service is not left running: the bench starts its
# own nginx with its own prefix, config, ports, pid and log files.
set -euo pipefail

APT_PACKAGES=(nginx libnginx-mod-nchan)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "bench-peers: ${APT_PACKAGES[*]} already installed"
  exit 0
fi

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo)
else
  echo "bench-peers: missing Debian packages; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "bench-peers: installing ${missing[*]} from Debian"
"${as_root[@]}" apt-get update -qq
# RUNLEVEL=1 keeps the package scripts from starting the system nginx on port 80.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Where the package scripts started it anyway (a host with an init system), stop it: the bench runs its own.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  "${as_root[@]}" systemctl stop nginx || true
  "${as_root[@]}" systemctl disable nginx >/dev/null 2>&1 || true
elif [ -x /etc/init.d/nginx ] && /etc/init.d/nginx status >/dev/null 2>&1; then
  "${as_root[@]}" /etc/init.d/nginx stop >/dev/null || true
fi
echo "bench-peers: $(nginx -v 2>&1); nchan module: $(ls /usr/lib/nginx/modules/ngx_nchan_module.so)"
