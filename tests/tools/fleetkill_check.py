#!/usr/bin/env python3
"""fleetkill_check.py: checks for tests/integration/fleet_kill.sh.

  fleetkill_check.py stream STREAM OUT PORT...
      Reads every message of JetStream stream STREAM (the fleet feed) over the
      plain NATS protocol (JetStream API: STREAM.INFO, then STREAM.MSG.GET for
      each sequence) from the first server of PORT... that answers. Writes
      each message's Nats-Msg-Id to OUT (one a line, stream order) and prints
          messages=N read=R distinct=D body_mismatch=B no_msgid=X
      (N: the stream's own count; D: distinct Nats-Msg-Id; B: messages whose
      body's event_id is not their Nats-Msg-Id).
  fleetkill_check.py serves PORT IDS
      Asks a node's served for every event ID in IDS (GET
      /_matrix/federation/v1/event/{id}) and pages /_fed/v1/events; prints
          listed=N distinct=D ids=I missing=M unlisted=U
      (missing: IDs not answered 200 with a PDU; unlisted: answered, but
      that PDU is not in the node's /_fed/v1/events).
  fleetkill_check.py listed PORT
      Prints how many events the node's /_fed/v1/events pages out.
  fleetkill_check.py overlaps LOG
      fleet_proxy.py's request log: prints
          requests=N overlaps=K
      K = requests that started while another node's request to the same
      peer was still in flight (the first few are printed on stderr).
"""
import base64, json, socket, sys, urllib.parse, urllib.request


class Nats:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.n = 0
        if not self.line().startswith(b"INFO"):
            raise OSError("not a NATS server")
        self.s.settimeout(10)
        self.s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\n'
                       b"SUB _INBOX.fleetkill.* 1\r\nPING\r\n")

    def fill(self):
        d = self.s.recv(1 << 16)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def take(self, n):
        while len(self.buf) < n + 2:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d

    def req(self, subject, data=b""):
        self.n += 1
        inbox = b"_INBOX.fleetkill.%d" % self.n
        self.s.sendall(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), inbox, len(data), data))
        while True:
            l = self.line()
            if l.startswith(b"PING"):
                self.s.sendall(b"PONG\r\n")
            elif l.startswith(b"-ERR"):
                raise OSError(l.decode())
            elif l.startswith(b"MSG "):
                p = l.split()
                d = self.take(int(p[-1]))
                if p[1] == inbox:
                    return json.loads(d)
            elif l.startswith(b"HMSG "):
                p = l.split()
                d = self.take(int(p[-1]))
                if p[1] == inbox:
                    hl = int(p[-2])
                    if b" 503" in d[:hl]:
                        raise OSError("no responders (JetStream not ready)")
                    return json.loads(d[hl:])


def stream(name, out, ports):
    last = None
    for port in ports:
        try:
            c = Nats(int(port))
            info = c.req("$JS.API.STREAM.INFO." + name)
            if "error" in info:
                raise OSError(json.dumps(info["error"]))
            st = info["state"]
            ids, body_mismatch, no_msgid, read = [], 0, 0, 0
            for seq in range(st.get("first_seq", 1), st.get("last_seq", 0) + 1):
                r = c.req("$JS.API.STREAM.MSG.GET." + name, json.dumps({"seq": seq}).encode())
                if "error" in r:
                    if r["error"].get("err_code") == 10037:   # deleted: none here
                        continue
                    raise OSError(json.dumps(r["error"]))
                m = r["message"]
                read += 1
                hdrs = base64.b64decode(m.get("hdrs") or b"").decode("utf-8", "replace")
                mid = None
                for h in hdrs.split("\r\n")[1:]:
                    k, _, v = h.partition(":")
                    if k.strip().lower() == "nats-msg-id":
                        mid = v.strip()
                if mid is None:
                    no_msgid += 1
                    continue
                ids.append(mid)
                try:
                    body = json.loads(base64.b64decode(m.get("data") or b""))
                    if body.get("event_id") != mid:
                        body_mismatch += 1
                except ValueError:
                    body_mismatch += 1
            with open(out, "w") as f:
                for i in ids:
                    f.write(i + "\n")
            print(f"messages={st.get('messages', 0)} read={read} distinct={len(set(ids))} "
                  f"body_mismatch={body_mismatch} no_msgid={no_msgid}")
            return 0
        except (OSError, EOFError, ValueError, KeyError) as e:
            last = e
    print(f"stream {name}: no server answered ({last})", file=sys.stderr)
    return 1


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def canon(e):
    return json.dumps(e, sort_keys=True, separators=(",", ":"))


def listing(port):
    base = f"http://127.0.0.1:{port}"
    listed, since = [], 0
    while True:
        a = get(f"{base}/_fed/v1/events?since={since}&limit=500")
        listed += [canon(e) for e in a["events"]]
        if not a["events"]:
            break
        since = a["next"]
    return listed


def serves(port, idsfile):
    base = f"http://127.0.0.1:{port}"
    listed = listing(port)
    have = set(listed)
    ids = [l.strip() for l in open(idsfile) if l.strip()]
    missing = unlisted = 0
    for i in ids:
        try:
            p = get(f"{base}/_matrix/federation/v1/event/{urllib.parse.quote(i, safe='')}")["pdus"][0]
        except Exception:
            missing += 1
            if missing <= 3:
                print(f"# port {port}: {i} not served", file=sys.stderr)
            continue
        if canon(p) not in have:
            unlisted += 1
    print(f"listed={len(listed)} distinct={len(have)} ids={len(ids)} missing={missing} unlisted={unlisted}")
    return 0


def overlaps(log):
    reqs = {}
    for line in open(log):
        s, e, node, peer, status, path = line.rstrip("\n").split(" ", 5)
        reqs.setdefault(peer, []).append((int(s), int(e), node, path))
    n = 0
    for peer, rs in reqs.items():
        rs.sort()
        end_by = {}
        for s, e, node, path in rs:
            others = [o for o, oe in end_by.items() if o != node and oe > s]
            if others:
                n += 1
                if n <= 5:
                    print(f"# overlap on {peer}: {node} {path} at {s} while {others} in flight", file=sys.stderr)
            end_by[node] = max(end_by.get(node, 0), e)
    print(f"requests={sum(len(v) for v in reqs.values())} overlaps={n}")
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "stream":
        sys.exit(stream(args[0], args[1], args[2:]))
    if cmd == "serves":
        sys.exit(serves(args[0], args[1]))
    if cmd == "listed":
        print(len(listing(args[0])))
        sys.exit(0)
    if cmd == "overlaps":
        sys.exit(overlaps(args[0]))
    print(__doc__, file=sys.stderr)
    sys.exit(100)
