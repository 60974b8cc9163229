# deb_package.sh: the Debian package. Builds it as `make deb` does
# (scripts/install.sh into a staging tree with PREFIX=/usr, then
# scripts/mkdeb.sh), or takes FP_DEB=path.deb, extracts it with dpkg-deb -x,
# runs the extracted programs' --version and -n against the extracted example
# configuration, checks the man pages, units, sysusers file and docs are in
# it, the units unchanged but for their prefix, the postinst starting
# nothing, and lintian reporting no E: line.
. tests/lib/lib.sh
R=$FP_ROOT
if ! command -v dpkg-deb >/dev/null 2>&1; then
	skip "dpkg-deb is not installed"
	finish
fi
PROGS=""
for d in "$R"/cmd/*/; do PROGS="$PROGS $(basename "$d")"; done
VERSION=$("$FP_BIN/fedctl" --version | awk '{print $NF}')

if [ -n "${FP_DEB:-}" ]; then
	DEB=$FP_DEB
else
	if sh "$R/scripts/install.sh" "$T_TMP/stage" /usr "$FP_BIN" >"$T_TMP/install.log" 2>&1; then
		ok "scripts/install.sh DESTDIR /usr BIN"
	else
		not_ok "scripts/install.sh failed: $(tail -3 "$T_TMP/install.log")"
	fi
	if sh "$R/scripts/mkdeb.sh" "$T_TMP/stage" "$T_TMP/out" >"$T_TMP/mkdeb.out" 2>"$T_TMP/mkdeb.err"; then
		ok "scripts/mkdeb.sh builds the package"
	else
		not_ok "scripts/mkdeb.sh failed: $(tail -5 "$T_TMP/mkdeb.err")"
	fi
	DEB=$(tail -n 1 "$T_TMP/mkdeb.out")
fi
ARCH=$(dpkg --print-architecture)
check_eq "package named fedpipe_<version>_<arch>.deb" "fedpipe_${VERSION}_$ARCH.deb" "$(basename "${DEB:-none}")"
if [ ! -f "${DEB:-}" ]; then not_ok "no package to check"; finish; fi

X=$T_TMP/x
check "dpkg-deb -x extracts it" dpkg-deb -x "$DEB" "$X"
check_eq "control: Package" fedpipe "$(dpkg-deb -f "$DEB" Package)"
check_eq "control: Version is the programs' FP_VERSION" "$VERSION" "$(dpkg-deb -f "$DEB" Version)"
check_eq "control: Architecture" "$ARCH" "$(dpkg-deb -f "$DEB" Architecture)"
dep=$(dpkg-deb -f "$DEB" Depends)
diag "Depends: $dep"
for lib in libc6 liblmdb0 libsodium23 adduser; do
	case ", $dep," in *", $lib "*|*", $lib,"*) ok "Depends names $lib" ;; *) not_ok "Depends lacks $lib: $dep" ;; esac
done

# The programs run from the package, against its example configuration.
EX=$X/usr/share/doc/fedpipe/examples/fedpipe.conf
check "example configuration in /usr/share/doc/fedpipe/examples" test -f "$EX"
for p in $PROGS; do
	b=$X/usr/bin/$p
	if [ ! -x "$b" ]; then not_ok "/usr/bin/$p is in the package"; continue; fi
	check_eq "extracted $p --version" "$p (fedpipe) $VERSION" "$("$b" --version 2>&1)"
	check_eq "extracted $p -n against the example configuration" "configuration OK" "$("$b" -c "$EX" -n 2>&1)"
	case "$(head -c 4 "$b" | od -An -c | tr -d ' ')" in 177ELF) ;; *) not_ok "$p is not an ELF program" ;; esac
done
check_eq "extracted fedsup --version" "fedsup (fedpipe) $VERSION" "$(sh "$X/usr/bin/fedsup" --version 2>&1)"

# Manual pages: every page of the tree, gzip'ed, byte for byte.
for pg in "$R"/cmd/*/*.[1-8] "$R"/scripts/fedsup.8 "$R"/doc/fedpipe.conf.5 "$R"/doc/fedpipe.7; do
	n=$(basename "$pg"); sec=${n##*.}
	gz=$X/usr/share/man/man$sec/$n.gz
	if [ -f "$gz" ] && gzip -dc "$gz" | cmp -s - "$pg"; then ok "man page $n in /usr/share/man/man$sec"
	else not_ok "man page $n missing or different in the package"; fi
done

# Units: the tree's, with their paths moved from /usr/local to /usr.
for u in "$R"/systemd/*.service "$R"/systemd/*.target; do
	n=$(basename "$u"); f=$X/usr/lib/systemd/system/$n
	if [ -f "$f" ] && sed 's|/usr/local/|/usr/|g' "$u" | cmp -s - "$f"; then ok "unit $n installed unchanged (prefix /usr)"
	else not_ok "unit $n missing or changed beyond its prefix"; fi
	e=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$f" 2>/dev/null)
	[ -z "$e" ] || check "unit $n: ExecStart $e is in the package" test -x "$X$e"
done
check "sysusers file /usr/lib/sysusers.d/fedpipe.conf" cmp -s "$R/systemd/fedpipe.sysusers" "$X/usr/lib/sysusers.d/fedpipe.conf"
check "copyright in /usr/share/doc/fedpipe" test -s "$X/usr/share/doc/fedpipe/copyright"
check "changelog.gz in /usr/share/doc/fedpipe names the version" \
	sh -c "gzip -dc '$X/usr/share/doc/fedpipe/changelog.gz' | head -1 | grep -q '^fedpipe ($VERSION) '"

# postinst: creates the user and the state directory, starts nothing.
dpkg-deb -e "$DEB" "$T_TMP/ctl"
PI=$T_TMP/ctl/postinst
check "postinst creates the user (systemd-sysusers or adduser)" grep -q 'systemd-sysusers\|adduser' "$PI"
check "postinst creates /var/lib/fedpipe" grep -q '/var/lib/fedpipe' "$PI"
if grep -v '^[[:space:]]*#' "$PI" | grep -qE 'systemctl|invoke-rc\.d|deb-systemd|service |start'; then not_ok "postinst starts something"; else ok "postinst starts nothing"; fi
check "postinst parses (sh -n)" sh -n "$PI"
# Run it against stub commands (PATH holds nothing else, so a systemctl or
# any other start would fail it): with systemd-sysusers it is used with the
# package's sysusers file; without, adduser --system; the state directory is
# made fedpipe's, mode 0750, when absent.
stubs() {
	rm -rf "$T_TMP/stub" && mkdir -p "$T_TMP/stub"
	for c in "$@"; do
		printf '#!/bin/sh\necho "%s $*" >>"%s"\n%s\n' "$c" "$T_TMP/calls" \
			"$( [ "$c" = getent ] && echo 'exit 2' || echo 'exit 0')" >"$T_TMP/stub/$c"
		chmod +x "$T_TMP/stub/$c"
	done
	: >"$T_TMP/calls"
}
SH=$(command -v sh)
stubs systemd-sysusers getent adduser install
PATH=$T_TMP/stub "$SH" "$PI" configure >/dev/null 2>&1; rc=$?
check_eq "postinst configure with systemd-sysusers: exit 0" 0 "$rc"
check "postinst runs systemd-sysusers /usr/lib/sysusers.d/fedpipe.conf" grep -qx 'systemd-sysusers /usr/lib/sysusers.d/fedpipe.conf' "$T_TMP/calls"
check "postinst does not call adduser when systemd-sysusers is there" sh -c "! grep -q '^adduser' '$T_TMP/calls'"
if [ ! -d /var/lib/fedpipe ]; then
	check "postinst makes /var/lib/fedpipe fedpipe's, 0750" grep -qx 'install -d -o fedpipe -g fedpipe -m 0750 /var/lib/fedpipe' "$T_TMP/calls"
fi
stubs getent adduser install
PATH=$T_TMP/stub "$SH" "$PI" configure >/dev/null 2>&1; rc=$?
check_eq "postinst configure without systemd-sysusers: exit 0" 0 "$rc"
check "postinst falls back to adduser --system" grep -q '^adduser --system .*fedpipe$' "$T_TMP/calls"
stubs systemd-sysusers getent adduser install
PATH=$T_TMP/stub "$SH" "$PI" abort-upgrade >/dev/null 2>&1
check_eq "postinst abort-upgrade does nothing" "" "$(cat "$T_TMP/calls")"
check "no conffiles outside /etc (none shipped)" sh -c "! dpkg-deb -c '$DEB' | grep -q ' ./etc/'"

if command -v lintian >/dev/null 2>&1; then
	lintian --tag-display-limit 0 "$DEB" >"$T_TMP/lintian" 2>&1
	sed 's/^/# lintian: /' "$T_TMP/lintian" | grep -v 'root privileges'
	if grep -q '^E:' "$T_TMP/lintian"; then not_ok "lintian reports errors: $(grep '^E:' "$T_TMP/lintian" | head -3)"
	else ok "lintian: no errors ($(grep -c '^W:' "$T_TMP/lintian") warnings)"; fi
else
	not_ok "lintian is not installed (Debian package lintian; make deps installs it)"
fi
finish
