# chaos_check.py: is a node converged and correct? Reads the node's stored
# stream (fedctl feed tail --source local) and its file feed directory and
# checks them against the originated event IDs.
# usage: chaos_check.py [--dump FILE] CONF FEED_DIR IDS_FILE...   prints one
# summary line; exit 0 when every check holds, 1 otherwise. --dump writes the
# sorted set of stored event IDs to FILE (to compare nodes' sets exactly).
import json, os, re, subprocess, sys

args = sys.argv[1:]
dump = None
if args[:1] == ["--dump"]:
    dump, args = args[1], args[2:]
conf, feed_dir, id_files = args[0], args[1], args[2:]
want = []
for f in id_files:
    want += [l.strip() for l in open(f) if l.strip().startswith("$")]
r = subprocess.run(["fedctl", "-c", conf, "feed", "tail", "--source", "local", "--since", "0"],
                   capture_output=True, text=True)
stream, prev = [], {}
for line in r.stdout.splitlines():
    e = json.loads(line)
    stream.append(e["event_id"])
    prev[e["event_id"]] = e["pdu"].get("prev_events", [])
pos = {}
dup_stream = 0
for i, eid in enumerate(stream):
    if eid in pos:
        dup_stream += 1
    pos[eid] = i
missing = [w for w in want if w not in pos]
order_bad = sum(1 for eid in stream for p in prev[eid] if p in pos and pos[p] > pos[eid])
feed = []
try:
    for name in os.listdir(feed_dir):
        m = re.match(r"^(\d{20})_(\$.+)\.json$", name)
        if m:
            feed.append((int(m.group(1)), m.group(2)))
except FileNotFoundError:
    pass
feed.sort()
feed_ids = [i for _, i in feed]
dup_feed = len(feed_ids) - len(set(feed_ids))
feed_missing = [w for w in want if w not in set(feed_ids)]
fpos = {eid: i for i, eid in enumerate(feed_ids)}
feed_order_bad = sum(1 for eid in feed_ids for p in prev.get(eid, []) if p in fpos and fpos[p] > fpos[eid])
feed_extra = len(set(feed_ids) - set(stream))
ok = not missing and not dup_stream and not order_bad and not dup_feed and not feed_missing \
    and not feed_order_bad and not feed_extra and len(feed_ids) == len(stream)
print("stream=%d feed=%d want=%d missing=%d dup_stream=%d order_bad=%d dup_feed=%d feed_missing=%d "
      "feed_order_bad=%d feed_extra=%d %s" % (len(stream), len(feed_ids), len(want), len(missing), dup_stream,
      order_bad, dup_feed, len(feed_missing), feed_order_bad, feed_extra, "OK" if ok else "NOT-YET"))
if dump:
    with open(dump, "w") as f:
        f.write("".join(i + "\n" for i in sorted(set(stream))))
sys.exit(0 if ok else 1)
