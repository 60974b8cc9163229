#!/bin/sh
# Build the Debian package from an installed tree:
#   make install DESTDIR=STAGE PREFIX=/usr && sh scripts/mkdeb.sh STAGE OUTDIR
# writes OUTDIR/fedpipe_<version>_<arch>.deb with dpkg-deb, then runs lintian
# on it (when installed) and fails on any E: line. The version is the one the
# programs were built with (FP_VERSION: `fedctl --version`); the
# architecture dpkg's. Depends are computed by dpkg-shlibdeps from the ELF
# files themselves (through a throwaway debian/control), plus what the
# maintainer script needs. The binaries are stripped (Debian policy 10.1);
# DEBIAN/ gets control, md5sums and a postinst that creates the user and the
# state directory and starts nothing; /usr/share/doc/fedpipe gets copyright
# and changelog.gz. Prints the .deb's path on the last line.
# Environment: DEB_MAINTAINER ("Name <mail>"; default: a placeholder),
# SOURCE_DATE_EPOCH (the changelog date; default: the last commit's).
set -eu
umask 022
[ $# -eq 2 ] || { echo "usage: mkdeb.sh STAGE OUTDIR" >&2; exit 100; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STAGE=$(cd "$1" && pwd)
mkdir -p "$2"
OUT=$(cd "$2" && pwd)
for t in dpkg-deb dpkg-shlibdeps strip gzip md5sum; do
	command -v "$t" >/dev/null || { echo "mkdeb.sh: $t is needed (Debian: dpkg-dev binutils)" >&2; exit 1; }
done
[ -x "$STAGE/usr/bin/fedctl" ] || { echo "mkdeb.sh: $STAGE/usr/bin/fedctl missing: run make install DESTDIR=$STAGE PREFIX=/usr first" >&2; exit 1; }

VERSION=$("$STAGE/usr/bin/fedctl" --version | awk '{print $NF}')
case $VERSION in [0-9]*) ;; *) echo "mkdeb.sh: no version from fedctl --version: '$VERSION'" >&2; exit 1 ;; esac
ARCH=$(dpkg --print-architecture)
# No maintainer contact is stated in the sources: a reserved .invalid
# address says so (lintian refuses localhost); set DEB_MAINTAINER for a real one.
DEB_MAINTAINER=${DEB_MAINTAINER:-fedpipe maintainers <maintainers@fedpipe.invalid>}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The tree sits where dpkg-shlibdeps expects a package built from debian/.
mkdir -p "$tmp/src/debian"
PKG=$tmp/src/debian/fedpipe
cp -a "$STAGE" "$PKG"
rm -rf "$PKG/DEBIAN"
mkdir -p "$PKG/DEBIAN"   # dpkg-shlibdeps finds the package root by it

# Strip the ELF programs, as dh_strip does.
elfs=""
for f in "$PKG"/usr/bin/*; do
	if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
		strip --remove-section=.comment --remove-section=.note --strip-unneeded "$f"
		elfs="$elfs debian/fedpipe/usr/bin/${f##*/}"
	fi
done
[ -n "$elfs" ] || { echo "mkdeb.sh: no ELF programs in $STAGE/usr/bin" >&2; exit 1; }

# Depends: what the programs are linked against, by dpkg-shlibdeps.
printf 'Source: fedpipe\n\nPackage: fedpipe\nArchitecture: any\n' >"$tmp/src/debian/control"
# shellcheck disable=SC2086
shlibs=$(cd "$tmp/src" && dpkg-shlibdeps -O $elfs 2>"$tmp/shlibdeps.err" | sed -n 's/^shlibs:Depends=//p') || {
	cat "$tmp/shlibdeps.err" >&2; exit 1; }
cat "$tmp/shlibdeps.err" >&2
[ -n "$shlibs" ] || { echo "mkdeb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# postinst: systemd-sysusers when there, else adduser (lintian wants it named).
DEPENDS="$shlibs, adduser"

DOC=$PKG/usr/share/doc/fedpipe
YEAR=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
mkdir -p "$DOC"
cat >"$DOC/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fedpipe
Comment: Built from the fedpipe source tree (commit $COMMIT).
 The fedpipe sources carry no license statement yet; until one is added,
 no license beyond what copyright law allows is granted.

Files: *
Copyright: $YEAR the fedpipe authors
License: none-stated
 The fedpipe sources state no license.
EOF
DATE=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
cat >"$tmp/changelog" <<EOF
fedpipe ($VERSION) unstable; urgency=medium

  * Built from the fedpipe source tree, commit $COMMIT (make deb).

 -- $DEB_MAINTAINER  $DATE
EOF
gzip -9n <"$tmp/changelog" >"$DOC/changelog.gz"

cat >"$PKG/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# fedpipe postinst: create the user the units run as and the state
# directory. Starts nothing: enable fedpipe.target when configured.
set -e
if [ "$1" = configure ]; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers /usr/lib/sysusers.d/fedpipe.conf
	elif ! getent passwd fedpipe >/dev/null; then
		adduser --system --group --home /var/lib/fedpipe --no-create-home fedpipe
	fi
	if [ ! -d /var/lib/fedpipe ]; then
		install -d -o fedpipe -g fedpipe -m 0750 /var/lib/fedpipe
	fi
fi
exit 0
EOF
chmod 0755 "$PKG/DEBIAN/postinst"
SIZE=$(du -sk "$PKG" --exclude=DEBIAN | awk '{print $1}')
cat >"$PKG/DEBIAN/control" <<EOF
Package: fedpipe
Version: $VERSION
Architecture: $ARCH
Maintainer: $DEB_MAINTAINER
Installed-Size: $SIZE
Depends: $DEPENDS
Section: net
Priority: optional
Description: replicate signed Matrix events between federated servers
 fedpipe pulls events from its peers, fetches whatever they reference that
 it lacks, validates every byte (canonical JSON, content hashes, event IDs,
 ed25519 signatures), holds events whose dependencies have not arrived yet,
 stores what is complete in LMDB, and publishes it, in order and exactly
 once, to a feed (files, stdout or NATS JetStream).
 .
 It is a pipeline of small daemons (syncd, validated, purgatoryd, fetchd,
 feedpump, served) talking over Unix sockets, with systemd units, a shell
 supervisor (fedsup) and an operator CLI (fedctl).
EOF
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
	xargs md5sum) >"$PKG/DEBIAN/md5sums"
chmod 0644 "$PKG/DEBIAN/control" "$PKG/DEBIAN/md5sums"
find "$PKG" -type d -exec chmod 0755 {} +
# Reproducible: no file newer than the source.
find "$PKG" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

DEB=$OUT/fedpipe_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$DEB" >/dev/null
if command -v lintian >/dev/null; then
	lintian --tag-display-limit 0 "$DEB" >"$tmp/lintian" 2>&1 || true
	cat "$tmp/lintian" >&2
	if grep -q '^E:' "$tmp/lintian"; then
		echo "mkdeb.sh: lintian reports errors for $DEB" >&2
		exit 1
	fi
else
	echo "mkdeb.sh: lintian not installed (Debian package lintian): not checked" >&2
fi
echo "$DEB"
