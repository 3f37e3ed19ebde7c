#!/usr/bin/env bash
# Every bench of bench/, one after the other, each measuring ours and the C
# proxymap (or ours with and without a feature) in the same run; output of
# each into DIR/NAME.txt. Run on a quiet machine, as root, after `npm run build`.
#
#   bash bench/all.sh [DIR]        (default: bench-results/)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-results}"
mkdir -p "$out"
run() {
  local name="$1"; shift
  echo "== $name: $*"
  { echo "\$ $*"; date -u; timeout 1800 "$@"; echo "exit $?"; } >"$out/$name.txt" 2>&1
  tail -n 25 "$out/$name.txt"
}
BUN="${BUN:-$(pwd)/node_modules/.bin/bun}"
run startup   "$BUN" bench/startup.ts --runs 20
run compare   "$BUN" bench/compare.ts --pin 1,0 --seconds 3 --rounds 3
run filedb    "$BUN" bench/filedb.ts --pin 1,0 --seconds 3
run bdb       "$BUN" bench/bdb.ts 3 --pin 1,0
run mysql     "$BUN" bench/mysql.ts --seconds 4
run pgsql     "$BUN" bench/pgsql.ts --seconds 4
run ldap      "$BUN" bench/ldap.ts --seconds 3 --rounds 2
run memcache  "$BUN" bench/memcache.ts --pin 1,0 --seconds 3 --rounds 3
run statscost "$BUN" bench/stats-cost.ts --pin 1,0 --rounds 8 --seconds 3
run statsaa   "$BUN" bench/stats-cost.ts --pin 1,0 --rounds 8 --seconds 3 --aa
run blocking  "$BUN" bench/blocking.ts --seconds 3
