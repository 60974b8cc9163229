#!/usr/bin/env python3
# json_interop.py: our canonical encoder against python3-canonicaljson (the
# one Synapse uses), byte for byte, on ~2,000 seeded awkward documents, and
# our strict parser's refusals on documents room v6+ forbids. Drives
# $FP_BUILD/tools/fp_canon (one document per line in, one result per line out).
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import taplib  # noqa: E402
from taplib import ok  # noqa: E402
taplib.debian_python("canonicaljson")
import canonicaljson  # noqa: E402

MAX_SAFE = 2**53 - 1
SEED = int(os.environ.get("FP_INTEROP_SEED", "20240611"))
rng = random.Random(SEED)

# Characters chosen to hit every escaping and ordering rule.
AWKWARD = (
    [chr(c) for c in range(0x20)]            # all C0 controls
    + ['"', "\\", "/", "\x7f", " ", "a", "Z", "~"]
    + ["\u00e9", "\u00f1", "\u0120", "\u07ff", "\u0800", "\u0fff", "\u1820"]
    + ["\u0301", "\u0308", "e\u0301", "\u200b", "\u2028", "\u2029", "\ufeff"]  # combining, separators, BOM
    + ["\ue000", "\ufffd", "\uffff", "\ufffe", "\u65e5", "\u672c"]
    + ["\U00010000", "\U0001f600", "\U0001f408", "\U00020820", "\U0010ffff", "\U000e0001"]
)


def rand_str(maxlen=8):
    n = rng.randint(0, maxlen)
    return "".join(rng.choice(AWKWARD) if rng.random() < 0.6 else chr(rng.randint(0x20, 0x7e))
                   for _ in range(n))


def rand_int():
    r = rng.random()
    if r < 0.3:
        return rng.randint(-10, 10)
    if r < 0.6:
        return MAX_SAFE - rng.randint(0, 5) if rng.random() < 0.5 else -MAX_SAFE + rng.randint(0, 5)
    return rng.randint(-MAX_SAFE, MAX_SAFE)


def rand_value(depth):
    r = rng.random()
    if depth > 0 and r < 0.25:
        return {rand_str(): rand_value(depth - 1) for _ in range(rng.randint(0, 6))}
    if depth > 0 and r < 0.4:
        return [rand_value(depth - 1) for _ in range(rng.randint(0, 5))]
    if r < 0.65:
        return rand_str(12)
    if r < 0.85:
        return rand_int()
    return rng.choice([True, False, None])


def rand_doc():
    d = {rand_str(): rand_value(rng.randint(0, 5)) for _ in range(rng.randint(0, 12))}
    # Keys whose UTF-8 (code point) order differs from UTF-16 order: U+FFFF
    # sorts before U+1F600 in UTF-8 but after it (D83D...) in UTF-16.
    if rng.random() < 0.3:
        d["\uffff"] = 1
        d["\U0001f600"] = 2
        d["\ue000x"] = 3
        d["\U00010000"] = 4
    return d


def serialise(obj):
    """Serialise the same value in a randomly chosen, still valid, spelling:
    raw UTF-8 or \\u escapes (surrogate pairs for astral), random whitespace,
    random key order, and random escaping of plain characters."""
    style = rng.random()
    if style < 0.33:
        s = json.dumps(obj, ensure_ascii=True)
    elif style < 0.66:
        s = json.dumps(obj, ensure_ascii=False, indent=None, separators=(" , ", " :\t"))
    else:
        s = respell(obj)
    assert "\n" not in s
    return s


def respell_str(v):
    out = ['"']
    for ch in v:
        c = ord(ch)
        r = rng.random()
        if ch == '"' or ch == "\\" or c < 0x20 or r < 0.3:
            if ch == "/" and r < 0.5:
                out.append("\\/")
            elif c >= 0x10000:
                hi = 0xD800 + ((c - 0x10000) >> 10)
                lo = 0xDC00 + ((c - 0x10000) & 0x3FF)
                out.append("\\u%04X\\u%04x" % (hi, lo) if r < 0.15 else "\\u%04x\\u%04X" % (hi, lo))
            else:
                out.append(("\\u%04X" if r < 0.15 else "\\u%04x") % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def respell(v):
    ws = lambda: rng.choice(["", " ", "\t", "\r", "  ", " \r\t "])
    if isinstance(v, dict):
        items = list(v.items())
        rng.shuffle(items)
        return "{" + ws() + ",".join(ws() + respell_str(k) + ws() + ":" + ws() + respell(x) + ws()
                                      for k, x in items) + ws() + "}"
    if isinstance(v, list):
        return "[" + ws() + ",".join(ws() + respell(x) + ws() for x in v) + ws() + "]"
    if isinstance(v, str):
        return respell_str(v)
    return json.dumps(v)


# Documents our parser must refuse, with the code it must give.
def bad_docs():
    out = []
    for _ in range(40):
        base = rand_doc()
        k = "k" + str(rng.randint(0, 99))
        out.append(("range", "integer_range", json.dumps(dict(base, **{k: MAX_SAFE + rng.randint(1, 10**6)}))))
        out.append(("range", "integer_range", json.dumps(dict(base, **{k: [-MAX_SAFE - rng.randint(1, 10**6)]}))))
        out.append(("float", "float", json.dumps(dict(base, **{k: rng.choice([1.5, -0.25, 1e100])}))))
        inner = json.dumps(dict(base, **{k: 1}), ensure_ascii=False)
        # the same key twice, once spelled with an escape
        esc = "".join("\\u%04x" % ord(c) for c in k)
        out.append(("dupkey", "duplicate_key", inner[:-1] + (", " if len(inner) > 2 else "") + '"%s": 2}' % esc))
        out.append(("surrogate", "utf8", json.dumps({k: "x\\ud800y"}).replace("\\\\", "\\")))
        out.append(("depth", "depth", "[" * 65 + "]" * 65))
        out.append(("trailing", "trailing", json.dumps(base) + " {}"))
    return out


def main():
    build = os.environ.get("FP_BUILD", "build")
    tool = os.path.join(build, "tools", "fp_canon")

    if not os.access(tool, os.X_OK):
        ok(False, "%s is built (make %s)" % (tool, tool))
        return 1

    docs = [rand_doc() for _ in range(2000)]
    # Empty key and empty string, top-level scalars, and a document made of
    # nothing but the UTF-16-order trap.
    docs += [{"": ""}, {"": {"": []}}, "", "\u0000", MAX_SAFE, -MAX_SAFE, [], {},
             {"\uffff": 0, "\U0001f600": 1, "\U00010000": 2, "\ue000": 3}]
    lines = [serialise(d) for d in docs]
    want = [canonicaljson.encode_canonical_json(d) for d in docs]
    bad = bad_docs()
    inp = "\n".join(lines + [b[2] for b in bad]) + "\n"
    res = subprocess.run([tool], input=inp.encode("utf-8"), stdout=subprocess.PIPE, timeout=120)
    got = res.stdout.split(b"\n")
    ok(res.returncode == 0 and len(got) == len(lines) + len(bad) + 1,
       "fp_canon answered every line (%d lines, exit %d)" % (len(got) - 1, res.returncode))
    if len(got) < len(lines) + len(bad):
        return 1

    # The trap only means something if the two orders really differ.
    trap = {"\uffff": 0, "\U0001f600": 1}
    utf16 = sorted(trap, key=lambda s: s.encode("utf-16-be"))
    ok(list(json.loads(canonicaljson.encode_canonical_json(trap))) != utf16,
       "canonicaljson orders keys by code point, not UTF-16 (the trap is real)")

    mism = 0
    for i, (line, w) in enumerate(zip(lines, want)):
        if got[i] != w:
            mism += 1
            if mism <= 10:
                print("not ok %d - doc %d differs:\n#   in:   %r\n#   want: %r\n#   got:  %r"
                      % (taplib.n + mism, i, line[:300], w[:300], got[i][:300]))
    taplib.failed_lines(min(mism, 10))
    ok(mism == 0, "%d valid documents match canonicaljson byte for byte (%d differ)" % (len(lines), mism))

    # Our canonical output is a fixed point of our own encoder.
    res2 = subprocess.run([tool], input=b"\n".join(got[:len(lines)]) + b"\n", stdout=subprocess.PIPE, timeout=120)
    again = res2.stdout.split(b"\n")[:len(lines)]
    ok(again == got[:len(lines)], "canonical output re-encodes to itself")

    by_cat = {}
    for j, (cat, code, line) in enumerate(bad):
        g = got[len(lines) + j]
        by_cat.setdefault(cat, []).append((g == ("ERR " + code).encode(), line, g))
    for cat in sorted(by_cat):
        rows = by_cat[cat]
        badrows = [r for r in rows if not r[0]]
        for r in badrows[:3]:
            print("#   %s: %r -> %r" % (cat, r[1][:200], r[2][:200]))
        ok(not badrows, "%d %s documents refused with the right code (%d wrong)" % (len(rows), cat, len(badrows)))

    return taplib.done(" (seed %d)" % SEED)


if __name__ == "__main__":
    sys.exit(main())
