#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up, then every test inside a D-Bus session with an
# unlocked gnome-keyring, so the keychain backend is tested against a real Secret Service.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bash scripts/with-keyring.sh npx vitest run "$@"
