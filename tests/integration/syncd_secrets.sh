#!/bin/sh
# Issue 13 item 10 (syncd, keys): a peer's bearer key goes to that peer's
# endpoint host only: a peer that redirects to another listener on
# 127.0.0.1 is not followed, and an environment proxy never sees the key of
# a plain-http peer (the proxy would read the header). The signing key's
# temporary file is made O_EXCL|O_NOFOLLOW (a symlink planted there is not
# followed), and `fedctl keygen --force` never removes the old key before
# the new one is in place.
. tests/lib/lib.sh
. tests/tools/federation_lib.sh
PK=$(free_port); PR=$(free_port); PX=$(free_port); PB=$(free_port)
K=$(node_config k "$PK")
sed -i 's/^\[node\]$/[node]\nshared_key = k-s3cret/' "$K"
served_fill -c "$K" -N 5 >/dev/null
node_start k served
bg python3 tests/tools/syncd_badpeer.py "$PX" listen "" "$T_TMP/elsewhere.req"
bg python3 tests/tools/syncd_badpeer.py "$PR" redirect "http://127.0.0.1:$PX" "$T_TMP/redirect.req"
check "K up" wait_for "http_up http://127.0.0.1:$PK/healthz"
B=$(node_config b "$PB" "
[syncd]
interval = 300ms
backoff_max = 1s
longpoll = 0
[peer k]
endpoint = http://127.0.0.1:$PK
key = k-s3cret
[peer r]
endpoint = http://127.0.0.1:$PR
key = r-s3cret")
peer() { fedctl -c "$B" peers --json | jq -r ".[] | select(.name == \"$1\") | .$2"; }
# Every proxy variable points at the listener that must see nothing.
export http_proxy=http://127.0.0.1:$PX all_proxy=http://127.0.0.1:$PX ALL_PROXY=http://127.0.0.1:$PX
node_start b syncd
unset http_proxy all_proxy ALL_PROXY
check "k syncs with its key (directly, not through the proxy)" wait_for "[ \"\$(peer k cursor)\" = 6 ]" 200
check "r's redirect is not followed: http_status" wait_for "[ \"\$(peer r health)\" = http_status ]" 200
check "r was asked (the redirect was served)" wait_for "grep -q 'GET /_fed/v1/identity' $T_TMP/redirect.req" 50
sleep 1
check_eq "the other listener never saw a request" 0 "$(grep -c '^GET' "$T_TMP/elsewhere.req" 2>/dev/null || echo 0)"
check "no key reached it" sh -c "! grep -qi 's3cret\|authorization' '$T_TMP/elsewhere.req' 2>/dev/null"

# keygen: a symlink planted at the temporary path.
KEY=$T_TMP/b/signing.key
cp "$KEY" "$T_TMP/key.before"
echo precious >"$T_TMP/target"
ln -s "$T_TMP/target" "$KEY.tmp"
fedctl -c "$B" keygen --force >/dev/null 2>"$T_TMP/keygen.err"
check "keygen --force refuses the planted symlink (exit 1)" [ $? -eq 1 ]
check "with a clear error" grep -q "signing.key.tmp already exists" "$T_TMP/keygen.err"
check_eq "the symlink's target is untouched" precious "$(cat "$T_TMP/target")"
check "the old key is intact" cmp -s "$KEY" "$T_TMP/key.before"
check "and still loads" sh -c "fedctl -c '$B' keys doc >/dev/null"
rm -f "$KEY.tmp"
fedctl -c "$B" keygen >/dev/null 2>&1
check "keygen without --force keeps an existing key (exit 1)" [ $? -eq 1 ]
check "key unchanged" cmp -s "$KEY" "$T_TMP/key.before"
# --force under strace: the old key is never unlinked; one rename, after the
# new file's fsync; the directory is synced after the rename.
if command -v strace >/dev/null 2>&1; then
	# (no LeakSanitizer under ptrace: make asan)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -e trace=openat,unlink,unlinkat,rename,renameat,renameat2,fsync -o "$T_TMP/keygen.trace" \
		fedctl -c "$B" keygen --force >/dev/null 2>&1
	check_eq "keygen --force succeeds" 0 $?
	check "the old key path is never unlinked" sh -c "! grep -E 'unlink(at)?\(.*signing\.key\"' '$T_TMP/keygen.trace'"
	check "tmp made O_EXCL|O_NOFOLLOW" grep -Eq "signing\.key\.tmp.*O_EXCL.*O_NOFOLLOW|signing\.key\.tmp.*O_NOFOLLOW.*O_EXCL" "$T_TMP/keygen.trace"
	check "fsync, then rename over the key, then fsync of the directory" sh -c \
		"grep -E 'fsync|rename' '$T_TMP/keygen.trace' | sed 's/^[0-9]* *//' | cut -c1-6 | tr '\n' ' ' | grep -q 'fsync( rename.* fsync('"
else
	fedctl -c "$B" keygen --force >/dev/null 2>&1
	check_eq "keygen --force succeeds" 0 $?
fi
check "a new key is in place" sh -c "! cmp -s '$KEY' '$T_TMP/key.before' && fedctl -c '$B' keys doc >/dev/null"
check_eq "mode 0600" 600 "$(stat -c %a "$KEY")"
check "no temporary file left" [ ! -e "$KEY.tmp" ]
finish
