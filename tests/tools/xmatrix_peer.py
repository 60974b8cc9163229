#!/usr/bin/python3
"""xmatrix_peer.py: a Matrix server on 127.0.0.1 that answers only requests
whose X-Matrix signature verifies with Synapse's own library (Debian's
python3-signedjson), for fetchd's and syncd's signing tests.

Every request but the key endpoints (/_matrix/key/v2/server,
/_matrix/key/v2/query*) must carry `Authorization: X-Matrix ...` whose
signature over {method, uri, origin, destination, content?} verifies
(signedjson.sign.verify_signed_json) with the public key of --key (the
requester's Synapse-format signing key file, read with
signedjson.key.read_signing_keys), with origin == --origin and destination
== --name; else 401 {"errcode":"M_UNAUTHORIZED"}. uri is the request target
exactly as received. A verified request is answered from --events (JSON
lines of PDUs, their IDs in --ids): event, state_ids, event_auth, get_missing_events, backfill;
/_fed/v1/identity from --identity (a file) when given. Every request is
logged as one JSON line to --log: method, target, every Authorization value
seen, the parsed parameters, whether every value was quoted and every name
lower-case, and the verdict (ok or the reason). The port goes to
--port-file once listening.
"""
import argparse
import http.server
import json
import os
import re
import sys
import threading
from urllib.parse import parse_qs, unquote

import signedjson.key
import signedjson.sign

PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


def parse_xmatrix(value):
    """(params, all_quoted, all_lower) or None when not X-Matrix."""
    if not value.lower().startswith("x-matrix "):
        return None
    rest = value[9:]
    params, quoted, lower = {}, True, True
    pos = 0
    while pos < len(rest):
        m = PARAM.match(rest, pos)
        if not m or m.end() == pos:
            return None
        name, v = m.group(1), m.group(2)
        if name != name.lower():
            lower = False
        if v.startswith('"'):
            v = re.sub(r'\\(.)', r'\1', v[1:-1])
        else:
            quoted = False
        params[name.lower()] = v
        pos = m.end()
    return params, quoted, lower


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="this server's name (the destination expected)")
    ap.add_argument("--origin", required=True, help="the requester's server name")
    ap.add_argument("--key", required=True, help="the requester's signing key file")
    ap.add_argument("--events", help="JSON lines of PDUs served")
    ap.add_argument("--ids", help="their event IDs, one a line (fedpeer --ids)")
    ap.add_argument("--identity", help="file answered for /_fed/v1/identity")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--listen-port", type=int, default=0, help="0: any free port")
    ap.add_argument("--log", required=True)
    a = ap.parse_args()

    with open(a.key) as f:
        sk = signedjson.key.read_signing_keys(f)[0]
    vk = signedjson.key.get_verify_key(sk)
    key_id = "%s:%s" % (vk.alg, vk.version)
    pdus = []
    if a.events:
        with open(a.events) as f:
            pdus = [json.loads(line) for line in f if line.strip()]
    ids = [p.get("event_id") for p in pdus]
    if a.ids:
        with open(a.ids) as f:
            ids = [line.strip() for line in f if line.strip()]
    identity = open(a.identity, "rb").read() if a.identity else None
    lock = threading.Lock()
    logf = open(a.log, "a")

    def pdu_by_id(eid):
        # room v10+ PDUs carry no event_id: fedpeer writes the IDs alongside
        for p, i in zip(pdus, ids):
            if i == eid:
                return p
        return None

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, obj):
            out = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def check(self, body):
            """None when the request is authenticated, else the reason."""
            values = self.headers.get_all("Authorization") or []
            xm = [v for v in values if v.lower().startswith("x-matrix ")]
            rec = {"method": self.command, "target": self.path, "authorization": values}
            why = None
            if len(xm) != 1:
                why = "%d X-Matrix headers" % len(xm)
            else:
                parsed = parse_xmatrix(xm[0])
                if parsed is None:
                    why = "unparsable X-Matrix header"
                else:
                    p, quoted, lower = parsed
                    rec.update(params=p, all_quoted=quoted, all_lower=lower)
                    obj = {"method": self.command, "uri": self.path,
                           "origin": p.get("origin", ""), "destination": p.get("destination", a.name)}
                    if body:
                        try:
                            obj["content"] = json.loads(body)
                        except ValueError:
                            why = "body is not JSON"
                    if why:
                        pass
                    elif p.get("origin") != a.origin:
                        why = "origin %r, expected %r" % (p.get("origin"), a.origin)
                    elif "destination" not in p:
                        why = "no destination"
                    elif p["destination"] != a.name:
                        why = "destination %r, I am %r" % (p["destination"], a.name)
                    elif p.get("key") != key_id:
                        why = "key %r, expected %r" % (p.get("key"), key_id)
                    else:
                        obj["signatures"] = {p["origin"]: {p["key"]: p.get("sig", "")}}
                        try:
                            signedjson.sign.verify_signed_json(obj, p["origin"], vk)
                        except signedjson.sign.SignatureVerifyException as e:
                            why = "bad signature: %s" % e
            rec["verdict"] = why or "ok"
            with lock:
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
            return why

        def handle_any(self, body):
            path = self.path.split("?", 1)[0]
            if path == "/_matrix/key/v2/server" or path.startswith("/_matrix/key/v2/query"):
                with lock:
                    logf.write(json.dumps({"method": self.command, "target": self.path,
                                           "authorization": self.headers.get_all("Authorization") or [],
                                           "verdict": "open"}) + "\n")
                    logf.flush()
                return self.reply(404, {"errcode": "M_NOT_FOUND", "error": "no keys here"})
            why = self.check(body)
            if why:
                sys.stderr.write("xmatrix_peer[%s]: 401 %s %s: %s\n" % (a.name, self.command, self.path, why))
                sys.stderr.flush()
                return self.reply(401, {"errcode": "M_UNAUTHORIZED", "error": why})
            parts = [unquote(x) for x in path.split("/")]
            q = parse_qs(self.path.split("?", 1)[1]) if "?" in self.path else {}
            fed = "/_matrix/federation/v1/"
            if path.startswith(fed + "event/"):
                p = pdu_by_id(parts[-1])
                if p is None:
                    return self.reply(404, {"errcode": "M_NOT_FOUND", "error": "no such event"})
                return self.reply(200, {"origin": a.name, "origin_server_ts": 1, "pdus": [p]})
            if path.startswith(fed + "state_ids/"):
                return self.reply(200, {"pdu_ids": [i for i in ids if i], "auth_chain_ids": []})
            if path.startswith(fed + "event_auth/"):
                return self.reply(200, {"auth_chain": pdus[:1]})
            if path.startswith(fed + "get_missing_events/"):
                return self.reply(200, {"events": pdus[:1]})
            if path.startswith(fed + "backfill/"):
                return self.reply(200, {"origin": a.name, "origin_server_ts": 1,
                                        "pdus": pdus[:int(q.get("limit", ["1"])[0])]})
            if path == "/_fed/v1/identity" and identity is not None:
                return self.reply(200, identity)
            return self.reply(404, {"errcode": "M_NOT_FOUND", "error": "not here"})

        def do_GET(self):
            self.handle_any(None)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0") or 0)
            self.handle_any(self.rfile.read(n) if n else b"")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.listen_port), H)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
