#!/usr/bin/env bash
# The pinned AWS CDK CLI (npm aws-cdk), installed once into a cache outside the checkout.
#   scripts/_cdk.sh            install if missing, print the cdk executable's path
#   scripts/_cdk.sh ARGS...    install if missing, run `cdk ARGS...`
# aws-cdk 2.1148.1 reads aws-cdk-lib 2.x cloud assemblies (the 3.x CLI rejects their schema).
# Override the cache folder with EDGEML_CDK_HOME. Node's end-of-life notices are silenced.
set -euo pipefail
CDK_VERSION="2.1148.1"
home="${EDGEML_CDK_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeml/aws-cdk-$CDK_VERSION}"
cdk="$home/node_modules/.bin/cdk"
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20,21,22
export NODE_NO_WARNINGS=1 CDK_DISABLE_VERSION_CHECK=1
if [ ! -x "$cdk" ]; then
  command -v npm >/dev/null || { echo "error: npm is not installed (needed for the aws-cdk CLI)" >&2; exit 1; }
  mkdir -p "$(dirname "$home")"
  staging="$(mktemp -d "$home.staging.XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  echo "installing aws-cdk@$CDK_VERSION into $home" >&2
  # Offline, fail within a minute instead of npm's default retries.
  npm install --prefix "$staging" --no-audit --no-fund --no-update-notifier --loglevel=error \
    --fetch-retries=1 --fetch-timeout=30000 "aws-cdk@$CDK_VERSION" >&2
  [ -d "$home" ] || mv "$staging" "$home"
fi
if [ $# -eq 0 ]; then
  echo "$cdk"
else
  exec "$cdk" "$@"
fi
