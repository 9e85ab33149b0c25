#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine (we run as root there), then the npm
# dependencies, then builds. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/aws ] || need+=(awscli)                                  # Debian's AWS CLI v2 (real client)
/usr/bin/python3 -c 'import botocore' 2>/dev/null || need+=(python3-botocore)
/usr/bin/python3 -c 'import jwcrypto' 2>/dev/null || need+=(python3-jwcrypto)  # an independent JOSE for the file-backend tests
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)    # a real Secret Service
command -v dbus-run-session >/dev/null || need+=(dbus-user-session)
[ -f /usr/include/libsecret-1/libsecret/secret.h ] || need+=(libsecret-1-dev)  # keytar builds against it
command -v secret-tool >/dev/null || need+=(libsecret-tools)
command -v wrk >/dev/null || need+=(wrk)                               # load generator for npm run bench
command -v ip >/dev/null || need+=(iproute2)                           # `ip link` in the network-namespace test
command -v pass >/dev/null || need+=(pass)                             # the pass backend (real pass)
command -v gpg >/dev/null || need+=(gnupg)                            # gpg behind pass
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: missing ${need[*]}; install them (Debian/Ubuntu: apt-get install ${need[*]})" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
