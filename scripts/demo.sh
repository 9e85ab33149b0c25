#!/usr/bin/env bash
# Quick start: the whole job end to end on an embedded default — a throwaway HOME, the file
# backend, and the project's local STS stand-in in place of AWS. Nothing outside /tmp is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2

demo_home=$(mktemp -d /tmp/vault-demo.XXXXXX)
sts_out="$demo_home/sts.out"
cleanup() {
  [ -n "${sts_pid:-}" ] && kill "$sts_pid" 2>/dev/null || true
  HOME="$demo_home" node packages/cli/bundle/bin.js server stop >/dev/null 2>&1 || true
  rm -rf "$demo_home"
}
trap cleanup EXIT

# The STS stand-in with the README example's accounts: central user + MFA device (code 123456), two roles.
node packages/stand-ins/dist/stsStandInMain.js >"$sts_out" &
sts_pid=$!
for _ in $(seq 50); do grep -q url "$sts_out" 2>/dev/null && break; sleep 0.1; done
sts_url=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).url)' "$sts_out")

mkdir -p "$demo_home/.aws"
cat >"$demo_home/.aws/config" <<INI
[profile central-account]
region = ap-northeast-1
mfa_serial = arn:aws:iam::111111111111:mfa/central-user

[profile account-a]
include_profile = central-account
role_arn = arn:aws:iam::222222222222:role/account-a-assume-role

[profile account-b]
source_profile = central-account
role_arn = arn:aws:iam::333333333333:role/account-b-role
mfa_serial = arn:aws:iam::111111111111:mfa/central-user
INI

export HOME="$demo_home" AWS_ENDPOINT_URL_STS="$sts_url" AWS_VAULT_BACKEND=file AWS_VAULT_FILE_PASSPHRASE=demo-passphrase
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_VAULT
vault() { node packages/cli/bundle/bin.js "$@"; }
# Who am I? Asked with the JS SDK so the demo needs no AWS CLI (which would need --endpoint-url).
whoami_js='process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="true";import("@aws-sdk/client-sts").then(async ({STSClient,GetCallerIdentityCommand})=>{const c=new STSClient({});console.log((await c.send(new GetCallerIdentityCommand({}))).Arn)})'
calls() { node -e 'fetch(process.argv[1]+"/__standin/calls").then(r=>r.json()).then(c=>{const m=c.filter(x=>x.ok&&x.action!=="GetCallerIdentity");console.log(m.length+" STS call(s) so far: "+m.map(x=>x.action).join(", "))})' "$sts_url"; }

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "AWS_ACCESS_KEY_ID=AKIA… AWS_SECRET_ACCESS_KEY=… vault add --env central-account"
AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY vault add --env central-account

step "vault exec account-a -t 123456 -- node -e '<GetCallerIdentity>'"
vault exec account-a -t 123456 -- node -e "$whoami_js"
calls

step "vault exec --region eu-west-1 account-b -- node -e '<GetCallerIdentity>'   # same MFA session, no code"
vault exec --region eu-west-1 account-b -- node -e "$whoami_js"
calls

step "vault exec account-a -- sh -c 'exit 3'   # cached: no STS call; exit code handed back"
set +e; vault exec account-a -- sh -c 'exit 3'; echo "exit code: $?"; set -e
calls

step "vault export --format json account-a | <credential_process reader>"
vault export --format json account-a | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log({Version:j.Version,AccessKeyId:j.AccessKeyId.slice(0,8)+"…",Expiration:j.Expiration})})'

step "vault list"
vault list

step "vault exec --server account-a -- node -e '<GetCallerIdentity>'   # the daemon's ECS endpoint, no keys in the env"
vault exec --server account-a -- sh -c 'echo "AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-unset} AWS_CONTAINER_CREDENTIALS_FULL_URI=$AWS_CONTAINER_CREDENTIALS_FULL_URI"; node -e "$0"' "$whoami_js"
calls

step 'eval "$(vault session start --imds --region eu-west-1 account-b)"; vault session ls'
eval "$(vault session start --imds --region eu-west-1 account-b)"
node -e "$whoami_js"
vault session ls
vault session stop --all
vault server stop

printf '\nDemo finished: the key only ever lived in the encrypted file keyring under %s (now removed).\n' "$demo_home"
