#!/bin/sh
# Install fedpipe: sh scripts/install.sh DESTDIR PREFIX BIN
# (the Makefile's install target: DESTDIR may be empty, BIN is where the
# programs were built). Installs
#   PREFIX/bin                      the programs (cmd/*) and fedsup
#   PREFIX/lib/systemd/system       the units and fedpipe.target
#   PREFIX/lib/sysusers.d           fedpipe.conf (the user the units run as)
#   PREFIX/share/man/man{1,5,7,8}   the manual pages, gzip -9n as Debian does
#   PREFIX/share/doc/fedpipe        README.md, examples/fedpipe.conf
# The units name /usr/local (systemd/gen.sh); with another PREFIX their paths
# (ExecStart=, Documentation=) are rewritten to it, nothing else changes.
set -eu
[ $# -eq 3 ] || { echo "usage: install.sh DESTDIR PREFIX BIN" >&2; exit 100; }
DESTDIR=$1 PREFIX=$2 BIN=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case $PREFIX in /*) ;; *) echo "install.sh: PREFIX must be absolute: $PREFIX" >&2; exit 100 ;; esac
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
D=$DESTDIR$PREFIX

PROGS=""
for d in "$ROOT"/cmd/*/; do PROGS="$PROGS $(basename "$d")"; done
for p in $PROGS; do
	[ -x "$BIN/$p" ] || { echo "install.sh: $BIN/$p is not built (run make)" >&2; exit 1; }
done

install -d "$D/bin" "$D/lib/systemd/system" "$D/lib/sysusers.d" \
	"$D/share/doc/fedpipe/examples"
for p in $PROGS; do install -m 0755 "$BIN/$p" "$D/bin/$p"; done
install -m 0755 "$ROOT/scripts/fedsup" "$D/bin/fedsup"

for u in "$ROOT"/systemd/*.service "$ROOT"/systemd/*.target; do
	sed "s|/usr/local/|$PREFIX/|g" "$u" >"$D/lib/systemd/system/$(basename "$u").tmp"
	chmod 0644 "$D/lib/systemd/system/$(basename "$u").tmp"
	mv "$D/lib/systemd/system/$(basename "$u").tmp" "$D/lib/systemd/system/$(basename "$u")"
done
install -m 0644 "$ROOT/systemd/fedpipe.sysusers" "$D/lib/sysusers.d/fedpipe.conf"

# Manual pages: beside each program's source, and doc/ for the rest.
pages="$ROOT/scripts/fedsup.8 $ROOT/doc/fedpipe.conf.5 $ROOT/doc/fedpipe.7"
for p in $PROGS; do
	for pg in "$ROOT/cmd/$p/$p".[1-8]; do
		[ -f "$pg" ] || { echo "install.sh: $p has no manual page in cmd/$p/" >&2; exit 1; }
		pages="$pages $pg"
	done
done
for pg in $pages; do
	sec=${pg##*.}
	install -d "$D/share/man/man$sec"
	gzip -9n <"$pg" >"$D/share/man/man$sec/$(basename "$pg").gz"
	chmod 0644 "$D/share/man/man$sec/$(basename "$pg").gz"
done

install -m 0644 "$ROOT/README.md" "$D/share/doc/fedpipe/README.md"
install -m 0644 "$ROOT/doc/fedpipe.conf.example" "$D/share/doc/fedpipe/examples/fedpipe.conf"
