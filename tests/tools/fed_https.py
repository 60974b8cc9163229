#!/usr/bin/python3
"""fed_https.py: Matrix servers over HTTPS on loopback addresses, for
tests/integration/fetchd_resolve.sh and bench/resolve.sh: each --listen
ADDR:PORT[=CERTNAME] is one server (a thread), its certificate chosen by SNI
from --certs DIR (SNI.pem + SNI.key; CERTNAME, else "default", when there
is no SNI or no such file), like tests/tools/wk_https.py.

Every TCP connection accepted is logged before the TLS handshake
({"listen","connect"}), every TLS hello ({"listen","tls_sni"}), every
request ({"listen","sni","host","path","verdict"}), one JSON line each to
--log: a test proves both what a server received and that it received
nothing at all.

Routes: --routes FILE (JSON, reread per request) {"HOST PATH": {"status",
"body", "headers"}} answer first (the well-known). Then federation reads
(GET /_matrix/federation/v1/event/ID) answered from --events (JSON lines of
PDUs, IDs in --ids) when the X-Matrix header verifies with Synapse's own
library (python3-signedjson) against --key (the requester's signing key
file), origin --origin and destination the Host's server name as the
request's destination must be: the server name fetchd was asked for, given
per listener by --name ADDR:PORT=SERVERNAME[,SERVERNAME...] (default: the
Host header);
else 401. --no-verify skips the check (benchmarks). Anything else 404.
--close: every answer closes its connection (each request connects anew).
"""
import argparse
import json
import os
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmatrix_peer import parse_xmatrix  # noqa: E402  (the same parser as the signing tests)

ap = argparse.ArgumentParser()
ap.add_argument("--listen", action="append", required=True)
ap.add_argument("--name", action="append", default=[])
ap.add_argument("--certs", required=True)
ap.add_argument("--routes")
ap.add_argument("--log", required=True)
ap.add_argument("--ready", required=True)
ap.add_argument("--events")
ap.add_argument("--ids")
ap.add_argument("--key")
ap.add_argument("--origin", default="self.test")
ap.add_argument("--no-verify", action="store_true")
ap.add_argument("--close", action="store_true", help="one request per connection (Connection: close)")
a = ap.parse_args()
lock = threading.Lock()
logf = open(a.log, "a")
names = {k: v.split(",") for k, v in (n.split("=", 1) for n in a.name)}

vk = key_id = None
if not a.no_verify and a.key:
    import signedjson.key
    import signedjson.sign
    with open(a.key) as f:
        sk = signedjson.key.read_signing_keys(f)[0]
    vk = signedjson.key.get_verify_key(sk)
    key_id = "%s:%s" % (vk.alg, vk.version)
pdus, ids = [], []
if a.events:
    with open(a.events) as f:
        pdus = [json.loads(line) for line in f if line.strip()]
    ids = [p.get("event_id") for p in pdus]
if a.ids:
    with open(a.ids) as f:
        ids = [line.strip() for line in f if line.strip()]


def log(rec):
    with lock:
        logf.write(json.dumps(rec) + "\n")
        logf.flush()


def ctx_for(name):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(os.path.join(a.certs, name + ".pem"), os.path.join(a.certs, name + ".key"))
    return c


def make_ctx(listen, default):
    base = ctx_for(default)

    def on_sni(sock, name, _ctx):
        sock.sni_seen = name or ""
        log({"listen": listen, "tls_sni": name or ""})
        if name and os.path.exists(os.path.join(a.certs, name + ".pem")):
            sock.context = ctx_for(name)
    base.sni_callback = on_sni
    return base


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=None):
        body = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if a.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def verify(self, dests):
        if a.no_verify:
            return "ok"
        values = self.headers.get_all("Authorization") or []
        xm = [v for v in values if v.lower().startswith("x-matrix ")]
        if len(xm) != 1:
            return "%d X-Matrix headers" % len(xm)
        parsed = parse_xmatrix(xm[0])
        if parsed is None:
            return "unparsable X-Matrix header"
        p = parsed[0]
        if p.get("origin") != a.origin:
            return "origin %r" % p.get("origin")
        if p.get("destination") not in dests:
            return "destination %r, I am %r" % (p.get("destination"), dests)
        if p.get("key") != key_id:
            return "key %r" % p.get("key")
        obj = {"method": self.command, "uri": self.path, "origin": p["origin"],
               "destination": p["destination"],
               "signatures": {p["origin"]: {p["key"]: p.get("sig", "")}}}
        try:
            signedjson.sign.verify_signed_json(obj, p["origin"], vk)
        except signedjson.sign.SignatureVerifyException as e:
            return "bad signature: %s" % e
        return "ok"

    def do_GET(self):
        host = self.headers.get("Host", "")
        sni = getattr(self.connection, "sni_seen", "")
        rec = {"listen": self.server.listen, "sni": sni, "host": host, "path": self.path}
        routes = {}
        if a.routes:
            try:
                with open(a.routes) as f:
                    routes = json.load(f)
            except (OSError, ValueError):
                pass
        r = routes.get(host + " " + self.path)
        if r is not None:
            rec["verdict"] = "route"
            log(rec)
            return self.reply(r.get("status", 200), r.get("body", ""), r.get("headers"))
        fed = "/_matrix/federation/v1/event/"
        if self.path.startswith(fed):
            why = self.verify(names.get(self.server.listen, [host]))
            rec["verdict"] = why
            log(rec)
            if why != "ok":
                return self.reply(401, json.dumps({"errcode": "M_UNAUTHORIZED", "error": why}))
            eid = unquote(self.path[len(fed):].split("?", 1)[0])
            for p, i in zip(pdus, ids):
                if i == eid:
                    return self.reply(200, json.dumps({"origin": "x", "origin_server_ts": 1, "pdus": [p]}))
            return self.reply(404, '{"errcode":"M_NOT_FOUND"}')
        rec["verdict"] = "404"
        log(rec)
        return self.reply(404, "{}")


class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def get_request(self):
        conn, addr = self.socket.accept()
        log({"listen": self.listen, "connect": addr[0]})
        conn.settimeout(10)
        return self.ctx.wrap_socket(conn, server_side=True), addr


servers = []
for spec in a.listen:
    l, _, default = spec.partition("=")
    host, port = l.rsplit(":", 1)
    cls = S
    if host.startswith("["):
        host = host[1:-1]
        cls = type("S6", (S,), {"address_family": socket.AF_INET6})
    s = cls((host, int(port)), H)
    s.listen = l
    s.ctx = make_ctx(l, default or "default")
    servers.append(s)
    threading.Thread(target=s.serve_forever, daemon=True).start()
with open(a.ready, "w") as f:
    f.write("ready\n")
threading.Event().wait()
