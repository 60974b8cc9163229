"""taplib.py: the TAP lines of the python integration tests (tests/run.sh
counts them): ok() prints "ok N - what" or "not ok N - what" and returns
the condition, skip() a skipped check, done() the summary line and the exit
status. debian_python() re-runs the test under Debian's /usr/bin/python3
when the modules it names do not import here (a pyenv or venv python may
shadow Debian's, whose python3-signedjson and -canonicaljson are the
independent implementations under test)."""
import importlib
import os
import sys

n = 0
failed = 0


def ok(cond, what):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, what), flush=True)
    return cond


def skip(what):
    global n
    n += 1
    print("ok %d - %s # SKIP" % (n, what), flush=True)


def failed_lines(k):
    """k "not ok" lines printed by the test itself."""
    global n, failed
    n += k
    failed += k


def done(note=""):
    print("# %d checks, %d failed%s" % (n, failed, note), flush=True)
    return 1 if failed else 0


def debian_python(*modules):
    try:
        for m in modules:
            importlib.import_module(m)
    except ImportError:
        if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        ok(False, "%s importable" % ", ".join(modules))
        sys.exit(1)
