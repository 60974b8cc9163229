#!/bin/sh
# Regenerate the configuration reference in README.md from the parameter
# table (fedctl config --markdown), between the CONFIG-REFERENCE markers.
# With --check, exit 1 if README.md is out of date instead of writing it.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp)
"${FP_BIN:-$ROOT/bin}/fedctl" config --markdown >"$tmp" || exit 1
awk -v gen="$tmp" '
	/<!-- CONFIG-REFERENCE:BEGIN -->/ { print; while ((getline l < gen) > 0) print l; skip=1; next }
	/<!-- CONFIG-REFERENCE:END -->/ { skip=0 }
	!skip { print }' "$ROOT/README.md" >"$tmp.readme"
if [ "${1:-}" = --check ]; then
	cmp -s "$tmp.readme" "$ROOT/README.md"; rc=$?
	rm -f "$tmp" "$tmp.readme"
	[ $rc -eq 0 ] || echo "README.md's configuration reference is out of date: run sh scripts/gen-config-doc.sh" >&2
	exit $rc
fi
mv "$tmp.readme" "$ROOT/README.md"
rm -f "$tmp"
