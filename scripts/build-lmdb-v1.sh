#!/bin/sh
# build-lmdb-v1.sh - rebuild the lmdb package's native addon for LMDB data format 1
#
# Why: the addon that the lmdb npm package ships uses LMDB 0.9.90 (data format
# 2). Postfix links the system liblmdb 0.9.x (data format 1): the two cannot
# open each other's files. The package carries the format-1 sources too and
# builds them when LMDB_DATA_V1=true.
#
# What: runs node-gyp (the copy bundled with npm) in node_modules/lmdb with
#   LMDB_DATA_V1=true          format-1 LMDB sources
#   ENABLE_V8_FUNCTIONS=false  pure N-API: Bun has no V8 API
#   ENABLE_FAST_API_CALLS=false
# against the Node headers already on the machine (npm's nodedir, else /usr):
# nothing is downloaded. The result is node_modules/lmdb/build/Release/lmdb.node,
# which build.ts embeds in dist/proxymap.
#
# A stamp file beside the addon records the lmdb version and settings; when it
# matches, the rebuild is skipped (set FORCE=1 to rebuild anyway).
#
# Run from the root package's postinstall (npm 11 does not run lmdb's own
# install script unless allowScripts approves it, and that script would only
# pick the stock prebuilt addon anyway).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
pkg="$root/node_modules/lmdb"
if [ ! -f "$pkg/package.json" ]; then
	echo "build-lmdb-v1: $pkg is missing: run npm ci first" >&2
	exit 1
fi

version=$(node -p "require('$pkg/package.json').version")
stamp="$pkg/build/Release/proxymap-bun.stamp"
want="lmdb=$version LMDB_DATA_V1=true ENABLE_V8_FUNCTIONS=false ENABLE_FAST_API_CALLS=false"
if [ "${FORCE:-0}" != 1 ] && [ -f "$pkg/build/Release/lmdb.node" ] && [ -f "$stamp" ] \
	&& [ "$(cat "$stamp")" = "$want" ]; then
	echo "build-lmdb-v1: $pkg/build/Release/lmdb.node is up to date ($want)"
	exit 0
fi

# node-gyp: npm sets npm_config_node_gyp for scripts; otherwise use npm's copy.
gyp="${npm_config_node_gyp:-}"
if [ -z "$gyp" ]; then
	npm_dir=$(dirname "$(readlink -f "$(command -v npm)")")/..
	gyp="$npm_dir/node_modules/node-gyp/bin/node-gyp.js"
fi
if [ ! -f "$gyp" ]; then
	echo "build-lmdb-v1: node-gyp not found (looked at $gyp); install npm's node-gyp" >&2
	exit 1
fi

# Node headers: npm's nodedir setting, else the Debian/NodeSource layout under /usr.
nodedir="${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}"
case "$nodedir" in ""|undefined|null) nodedir=/usr ;; esac
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
	echo "build-lmdb-v1: Node headers not found under $nodedir/include/node" \
		"(install nodejs's headers, e.g. Debian libnode-dev, or set npm nodedir)" >&2
	exit 1
fi

echo "build-lmdb-v1: building $pkg with $want (headers from $nodedir)"
cd "$pkg"
LMDB_DATA_V1=true ENABLE_V8_FUNCTIONS=false ENABLE_FAST_API_CALLS=false \
	node "$gyp" rebuild --nodedir="$nodedir" --jobs=2 >build-lmdb-v1.log 2>&1 || {
	tail -40 build-lmdb-v1.log >&2
	echo "build-lmdb-v1: node-gyp failed (full log: $pkg/build-lmdb-v1.log)" >&2
	exit 1
}
echo "$want" >"$stamp"
echo "build-lmdb-v1: wrote $pkg/build/Release/lmdb.node"
