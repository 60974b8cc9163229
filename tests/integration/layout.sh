#!/bin/sh
# layout.sh: the code map holds. common/ is four libraries and their
# dependencies point one way (common/README): matrix includes nothing of
# ours but core/buf.h; core may include core and matrix; store core, matrix
# and store; feed all four; a program includes the libraries and its own
# folder's headers only. Checked twice: in the sources (#include lines) and
# in the built archives (an undefined symbol of a library must not be
# defined only in a library it may not use).
. "$(dirname "$0")/../lib/lib.sh"
ROOT=${FP_ROOT:-$(pwd)}
cd "$ROOT" || exit 1

# 1. nothing loose in common/ but the README
loose=$(find common -maxdepth 1 -type f ! -name README | tr '\n' ' ')
check_eq "common/ holds only the four library folders and its README" "" "$loose"
check "common/README names each library" sh -c 'for l in core store matrix feed; do grep -q "^$l/" common/README || exit 1; done'

# 2. includes by folder
bad_inc() {  # bad_inc LIB ALLOWED-REGEX: lines including a header of ours outside ALLOWED
	grep -Hn '^#include "' common/$1/*.c common/$1/*.h | grep -v "#include \"\\($2\\)/" || true
}
check_eq "matrix includes only matrix/ and core/buf.h" "" \
	"$(bad_inc matrix matrix | grep -v '#include "core/buf.h"')"
check_eq "core includes only core/ and matrix/" "" "$(bad_inc core 'core\|matrix')"
check_eq "store includes only store/, core/ and matrix/" "" "$(bad_inc store 'store\|core\|matrix')"
check_eq "feed includes only the libraries" "" "$(bad_inc feed 'feed\|store\|core\|matrix')"
cmd_bad=""
for d in cmd/*/; do
	p=$(basename "$d")
	for f in "$d"*.c "$d"*.h; do
		grep -n '^#include "' "$f" | grep -v '#include "\(core\|store\|matrix\|feed\)/' | while IFS= read -r l; do
			h=$(echo "$l" | sed 's/.*#include "\([^"]*\)".*/\1/')
			[ -f "$d$h" ] || echo "$f: $h"
		done
	done
done > "$T_TMP/cmd_inc"
check_eq "programs include the libraries and their own headers only" "" "$(cat "$T_TMP/cmd_inc")"

# 3. the archives agree: undefined symbols of a library resolved only by
# the libraries it may use (or the system)
B=$FP_BUILD
defs() { nm -g --defined-only "$B/libfp$1.a" 2>/dev/null | awk 'NF==3{print $3}' | sort -u; }
undefs() { nm -g --undefined-only "$B/libfp$1.a" 2>/dev/null | awk '{print $NF}' | sort -u; }
for l in core store matrix feed; do defs $l > "$T_TMP/def.$l"; undefs $l > "$T_TMP/und.$l"; done
check "the four archives are built" test -s "$T_TMP/def.core" -a -s "$T_TMP/def.store" -a -s "$T_TMP/def.matrix" -a -s "$T_TMP/def.feed"
uses() {  # uses LIB FORBIDDEN...: symbols LIB needs that only a forbidden library defines
	_l=$1; shift
	cat "$T_TMP/def.$_l" > "$T_TMP/ok"
	for f in "$@"; do comm -12 "$T_TMP/und.$_l" "$T_TMP/def.$f"; done | sort -u | comm -23 - "$T_TMP/ok"
}
check_eq "libfpmatrix.a needs nothing from core, store or feed" "" "$(uses matrix core store feed | tr '\n' ' ')"
check_eq "libfpcore.a needs nothing from store or feed" "" "$(uses core store feed | tr '\n' ' ')"
check_eq "libfpstore.a needs nothing from feed" "" "$(uses store feed | tr '\n' ' ')"
check "test_matrix_alone was linked with libfpmatrix.a alone" test -x "$B/tests/test_matrix_alone"

# 4. each thing written once: the FNV-1a offset basis appears in one place
fnv=$(grep -rl '14695981039346656037\|1469598103934665603' common cmd tests/tools bench 2>/dev/null | tr '\n' ' ')
check_eq "FNV-1a is written once (core/hmap.c)" "common/core/hmap.c " "$fnv"
raw=$(grep -rl 'mdb_cursor_open' cmd common 2>/dev/null | grep -v '^common/store/' | tr '\n' ' ')
check_eq "no LMDB cursor outside the store library" "" "$raw"
multi=$(grep -rl 'CURLMOPT_SOCKETFUNCTION' cmd common 2>/dev/null | tr '\n' ' ')
check_eq "one curl-on-libevent glue" "common/core/curlev.c " "$multi"
exit $T_FAIL
