#!/bin/sh
# gen-bdb-offsets.sh - regenerate src/tables/bdb/offsets.generated.ts from the
# db.h of libdb5.3-dev with the machine's C compiler (see gen-bdb-offsets.c).
# Needs: cc, /usr/include/db.h (apt-get install libdb5.3-dev).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../src/tables/bdb/offsets.generated.ts"
if [ ! -f /usr/include/db.h ]; then
  echo "gen-bdb-offsets: /usr/include/db.h is missing: apt-get install libdb5.3-dev" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${CC:-cc} -o "$tmp/gen" "$here/gen-bdb-offsets.c"
"$tmp/gen" > "$tmp/out.ts"
mv "$tmp/out.ts" "$out"
echo "wrote $out"
