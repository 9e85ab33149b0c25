#!/usr/bin/env bash
# Runs a command against a real, throwaway Secret Service:
#   bash scripts/with-keyring.sh npx vitest run packages/core/src/keyring
#
# The command runs inside its own D-Bus session (dbus-run-session) in which a gnome-keyring-daemon
# serves org.freedesktop.secrets. The daemon gets a fresh temporary HOME / XDG_DATA_HOME /
# XDG_RUNTIME_DIR, so it never reads or writes the real user's keyrings; `--unlock` reads the
# password "test" from stdin, creates the "login" keyring with it (the default collection) and
# unlocks it. The command gets VAULT_TEST_KEYCHAIN=1 (the keychain tests then run and must pass)
# and VAULT_TEST_KEYRING_PASSWORD. Everything is torn down when the command ends; its exit code is
# passed back. Works nested (each run gets its own bus and daemon).
set -euo pipefail

if [ "${1:-}" != "--inside-dbus-session" ]; then
  if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 64
  fi
  for tool in dbus-run-session dbus-send gnome-keyring-daemon; do
    if ! command -v "$tool" >/dev/null; then
      echo "with-keyring: $tool not found; install dbus-user-session and gnome-keyring (Debian/Ubuntu: apt-get install dbus-user-session gnome-keyring)" >&2
      exit 127
    fi
  done
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/vault-keyring.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  rc=0
  # dbus-daemon may warn that it cannot raise its fd limit when not root-privileged enough; harmless.
  VAULT_KEYRING_TMP="$tmp" dbus-run-session -- bash "$0" --inside-dbus-session "$@" || rc=$?
  exit "$rc"
fi
shift

tmp="$VAULT_KEYRING_TMP"
unset VAULT_KEYRING_TMP
mkdir -p "$tmp/home" "$tmp/data" "$tmp/config" "$tmp/cache" "$tmp/run"
chmod 700 "$tmp/run"
password=test

printf '%s' "$password" | env HOME="$tmp/home" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" \
  XDG_CACHE_HOME="$tmp/cache" XDG_RUNTIME_DIR="$tmp/run" \
  gnome-keyring-daemon --foreground --unlock --components=secrets >"$tmp/daemon.log" 2>&1 &
daemon=$!
stop_daemon() {
  kill "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
}
trap stop_daemon EXIT

secrets_call() { # METHOD-ARGS… against the Secret Service, printing the reply
  dbus-send --session --print-reply=literal --reply-timeout=2000 --dest=org.freedesktop.secrets "$@"
}

# Wait until the daemon owns the name and its default collection exists and is unlocked.
ready=""
for _ in $(seq 1 100); do
  if ! kill -0 "$daemon" 2>/dev/null; then break; fi
  if dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
      org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; then
    collection=$(secrets_call /org/freedesktop/secrets org.freedesktop.Secret.Service.ReadAlias string:default 2>/dev/null | tr -d ' ' || true)
    if [ -n "$collection" ] && [ "$collection" != "/" ] &&
        secrets_call "$collection" org.freedesktop.DBus.Properties.Get \
          string:org.freedesktop.Secret.Collection string:Locked 2>/dev/null | grep -q false; then
      ready=yes
      break
    fi
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "with-keyring: gnome-keyring-daemon did not come up with an unlocked default collection; its log:" >&2
  cat "$tmp/daemon.log" >&2
  exit 1
fi

export VAULT_TEST_KEYCHAIN=1
export VAULT_TEST_KEYRING_PASSWORD="$password"
rc=0
"$@" || rc=$?
exit "$rc"
