# readme.sh: the README's configuration reference is the parameter table
# (regenerate with sh scripts/gen-config-doc.sh), .ci/run runs exactly the
# README's test command, and every program answers --help and --version.
. tests/lib/lib.sh
check "README configuration reference matches fedctl config --markdown" sh "$FP_ROOT/scripts/gen-config-doc.sh" --check
check ".ci/run runs the README's test command (make test)" grep -qx 'exec make test' "$FP_ROOT/.ci/run"
check "README names make test as the test command" grep -q '^make test ' "$FP_ROOT/README.md"
for p in validated purgatoryd fetchd syncd served feedpump fedctl; do
	if [ -x "$FP_BIN/$p" ]; then
		check "$p --help exits 0 and prints usage" sh -c "'$FP_BIN/$p' --help | grep -qi usage"
		check "$p --version" sh -c "'$FP_BIN/$p' --version | grep -q 'fedpipe'"
		check "$p rejects an unknown option with exit 100" sh -c "'$FP_BIN/$p' --no-such-option >/dev/null 2>&1; [ \$? -eq 100 ]"
	else
		not_ok "$p is not built"
	fi
done
check "fedsup --help" sh -c "'$FP_ROOT/scripts/fedsup' --help | grep -q usage"
finish
