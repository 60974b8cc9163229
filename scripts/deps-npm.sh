#!/bin/sh
# Install the npm packages the interoperability tests run against
# (tests/integration/sdk_interop.sh): @rocket.chat/federation-sdk and
# reflect-metadata, at the exact versions and hashes of
# tests/tools/sdk/package-lock.json, into BUILD/node_modules (the build tree,
# never committed), the way `npm ci` does: the lock file decides, nothing is
# resolved anew. A no-op when BUILD/node_modules already holds that lock's
# install. Node.js and npm come from Debian (scripts/deps.sh) only where the
# machine has none. Usage: sh scripts/deps-npm.sh [BUILD]   (default: build)
# The tests find the modules through FP_NODE_MODULES (default
# $FP_BUILD/node_modules).
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${1:-build}
SRC=tests/tools/sdk
need=""
command -v node >/dev/null 2>&1 || need="nodejs"
command -v npm >/dev/null 2>&1 || need="$need npm"
if [ -n "$need" ]; then
	# shellcheck disable=SC2086
	sh scripts/deps.sh $need
fi
STAMP=$BUILD/node_modules/.fedpipe-lock
if [ -f "$STAMP" ] && cmp -s "$STAMP" "$SRC/package-lock.json" &&
	[ -f "$BUILD/node_modules/@rocket.chat/federation-sdk/package.json" ]; then
	exit 0
fi
mkdir -p "$BUILD"
cp "$SRC/package.json" "$SRC/package-lock.json" "$BUILD/"
echo "deps-npm: npm ci in $BUILD ($(node --version), npm $(npm --version))" >&2
# --ignore-scripts: none of these packages needs an install script, and none
# is let run one.
(cd "$BUILD" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
cp "$SRC/package-lock.json" "$STAMP"
v=$(cd "$BUILD" && node -p 'require("./node_modules/@rocket.chat/federation-sdk/package.json").version')
echo "deps-npm: @rocket.chat/federation-sdk $v installed in $BUILD/node_modules" >&2
