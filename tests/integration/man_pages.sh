# man_pages.sh: every program has its manual page beside its source, every
# page is mandoc-lint clean (mandoc -Tlint -W warning prints nothing), every
# flag a program's --help lists appears in its page (a drift check), and
# fedpipe.conf(5) is what scripts/gen-man-conf.sh makes from the parameter
# table today.
. tests/lib/lib.sh
R=$FP_ROOT
if ! command -v mandoc >/dev/null 2>&1; then
	not_ok "mandoc is not installed (Debian package mandoc; make deps installs it)"
	finish
fi

# unbs: mandoc -Tascii's overstrike (X BS X bold, _ BS X underline) undone.
unbs() { sed 's/.\x08//g'; }
# page_of PROG: the page kept beside the program's source.
page_of() {
	case $1 in
	fedctl) echo "$R/cmd/fedctl/fedctl.1" ;;
	fedsup) echo "$R/scripts/fedsup.8" ;;
	*) echo "$R/cmd/$1/$1.8" ;;
	esac
}
PROGS=""
for d in "$R"/cmd/*/; do PROGS="$PROGS $(basename "$d")"; done
PROGS="$PROGS fedsup"
PAGES="$R/doc/fedpipe.conf.5 $R/doc/fedpipe.7"
for p in $PROGS; do
	pg=$(page_of "$p")
	if [ -f "$pg" ]; then ok "$p has a manual page (${pg#"$R"/})"; else not_ok "$p has no manual page ${pg#"$R"/}"; continue; fi
	PAGES="$PAGES $pg"
done

for pg in $PAGES; do
	out=$(mandoc -Tlint -W warning "$pg" 2>&1)
	check_eq "mandoc -Tlint -W warning ${pg#"$R"/}: nothing to say" "" "$out"
done

# The flags of --help: a token starting with - or -- after a blank, [ , ( or |.
help_flags() {
	sed 's/[][,(|=]/ /g' | tr -s '[:blank:]' '\n' | grep -E '^(--[a-z][a-z0-9-]*|-[a-zA-Z])$' | sort -u
}
for p in $PROGS; do
	pg=$(page_of "$p")
	[ -f "$pg" ] || continue
	if [ "$p" = fedsup ]; then help=$(sh "$R/scripts/fedsup" --help 2>/dev/null)
	elif [ -x "$FP_BIN/$p" ]; then help=$("$FP_BIN/$p" --help 2>/dev/null)
	else not_ok "$p is not built"; continue; fi
	text=$(mandoc -Tascii "$pg" | unbs)
	missing="" n=0
	for f in $(printf '%s\n' "$help" | help_flags); do
		n=$((n + 1))
		printf '%s\n' "$text" | grep -qE -- "(^|[^a-zA-Z0-9-])$f([^a-zA-Z0-9-]|\$)" || missing="$missing $f"
	done
	if [ "$n" -gt 0 ] && [ -z "$missing" ]; then ok "$p: all $n flags of --help are in its page"
	else not_ok "$p: flags of --help missing from ${pg#"$R"/}:${missing:- (no flags found in --help)}"; fi
	# The sections an operator looks for.
	secs="NAME SYNOPSIS DESCRIPTION FILES EXIT.STATUS SEE.ALSO"
	case $p in fedctl|fedsup) ;; *) secs="$secs SIGNALS CONFIGURATION" ;; esac
	nos=""
	for s in $secs; do printf '%s\n' "$text" | grep -qx "$s" || nos="$nos $s"; done
	check_eq "$p: page has $secs" "" "$nos"
done

# The generated page is the parameter table's, byte for byte.
check "doc/fedpipe.conf.5 equals what scripts/gen-man-conf.sh generates" \
	env FP_BIN="$FP_BIN" sh "$R/scripts/gen-man-conf.sh" --check
# Every key of the table is in the rendered page (gen-man-conf.sh's jq really ran).
keys=$("$FP_BIN/fedctl" -c /dev/null config --json | jq -r '.[].key' | sort -u)
text=$(mandoc -Tascii "$R/doc/fedpipe.conf.5" | unbs)
missing=""
for k in $keys; do printf '%s\n' "$text" | grep -qE "^ +$k = " || missing="$missing $k"; done
check_eq "fedpipe.conf(5) documents every parameter of fedctl config" "" "$missing"
finish
