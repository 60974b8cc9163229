# units_security.sh: every systemd unit, as committed and as `make install`
# installs it (PREFIX=/usr, scripts/install.sh), scores at most 1.5 on
# `systemd-analyze security --offline=true` and verifies clean
# (`systemd-analyze verify`: nothing on stderr). The scores are printed.
# systemd is never started: both verbs read unit files only.
. tests/lib/lib.sh
R=$FP_ROOT
MAX=1.5
if ! command -v systemd-analyze >/dev/null 2>&1; then
	skip "systemd-analyze is not installed (Debian package systemd)"
	finish
fi

# The committed units, with ExecStart pointing at this build (verify wants
# the binaries to exist), and the installed ones likewise.
mkdir -p "$T_TMP/tree" "$T_TMP/inst"
for u in "$R"/systemd/*.service "$R"/systemd/*.target; do
	sed "s|/usr/local/bin/|$FP_BIN/|g" "$u" >"$T_TMP/tree/$(basename "$u")"
done
if sh "$R/scripts/install.sh" "$T_TMP/root" /usr "$FP_BIN" >"$T_TMP/install.log" 2>&1; then
	for u in "$T_TMP"/root/usr/lib/systemd/system/*; do
		sed "s|/usr/bin/|$FP_BIN/|g" "$u" >"$T_TMP/inst/$(basename "$u")"
	done
else
	not_ok "scripts/install.sh failed: $(tail -3 "$T_TMP/install.log")"
fi

for set in tree inst; do
	d=$T_TMP/$set
	case $set in tree) what="committed" ;; inst) what="installed" ;; esac
	set -- "$d"/*.service; n=$#
	check "$what units: one per stage ($n)" test "$n" -eq "$("$FP_BIN/fedctl" stages | wc -l)"
	err=$(cd "$d" && systemd-analyze verify ./*.service ./*.target 2>&1 >/dev/null)
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$err" ]; then ok "$what units: systemd-analyze verify clean"
	else not_ok "$what units: systemd-analyze verify (rc $rc): $(printf '%s' "$err" | head -5)"; fi
	for u in "$d"/*.service; do
		n=$(basename "$u")
		line=$(systemd-analyze security --offline=true "$u" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
		score=${line%% *}
		diag "$what $n: ${line:-no score}"
		if [ -n "$score" ] && awk -v s="$score" -v m="$MAX" 'BEGIN { exit !(s <= m) }'; then
			ok "$what $n: exposure $score <= $MAX"
		else
			not_ok "$what $n: exposure ${score:-unknown} above $MAX"
		fi
	done
done

# The check can fail: a unit without its hardening scores far above.
sed -e '/^\(ProtectSystem\|PrivateDevices\|SystemCallFilter\|CapabilityBoundingSet\|RestrictAddressFamilies\|ProtectKernel\|NoNewPrivileges\|PrivateTmp\|ProtectHome\|RestrictNamespaces\)/d' \
	"$T_TMP/tree/fedpipe-served.service" >"$T_TMP/weak.service"
weak=$(systemd-analyze security --offline=true "$T_TMP/weak.service" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -n "$weak" ] && awk -v s="$weak" -v m="$MAX" 'BEGIN { exit !(s > m) }'; then
	ok "a served unit stripped of its hardening scores $weak, above $MAX (the check bites)"
else
	not_ok "a stripped unit scored ${weak:-unknown}: the check does not bite"
fi
finish
