#!/usr/bin/env python3
"""wk_https.py: the HTTPS servers of tests/integration/resolve_dns.sh.

Listens on every --listen ADDR:PORT[=NAME] (IPv6 as [ADDR]:PORT) (one thread each). The
certificate is chosen by SNI from --certs DIR (SNI.pem + SNI.key; NAME, or
"default", when there is no SNI or no such file), so a test decides which name each server proves.
Answers come from --routes FILE (JSON, reread on every request):
  {"HOST PATH": {"status": 200, "body": "...", "headers": {"K": "V"}}, ...}
where HOST is the Host header as sent; GET /_matrix/federation/v1/version
answers 200 {"server":{"name":"wk_https","version":"ADDR:PORT"}} unless
routed; anything else 404. Every TLS hello is appended to --log as one JSON
line {"listen","tls_sni"} (so a refused handshake still shows the SNI sent),
every request as {"listen","sni","host","path"}. Writes --port-file when all listen.
"""
import argparse, json, os, socket, ssl, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--listen", action="append", required=True)
ap.add_argument("--certs", required=True)
ap.add_argument("--routes", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--ready", required=True)
a = ap.parse_args()
lock = threading.Lock()


def ctx_for(name):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(os.path.join(a.certs, name + ".pem"), os.path.join(a.certs, name + ".key"))
    return c


def make_ctx(listen, default):
    base = ctx_for(default)

    def on_sni(sock, name, _ctx):
        sock.sni_seen = name or ""
        with lock, open(a.log, "a") as f:
            f.write(json.dumps({"listen": listen, "tls_sni": name or ""}) + "\n")
        if name and os.path.exists(os.path.join(a.certs, name + ".pem")):
            sock.context = ctx_for(name)
    base.sni_callback = on_sni
    return base


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        host = self.headers.get("Host", "")
        sni = getattr(self.connection, "sni_seen", "")
        with lock, open(a.log, "a") as f:
            f.write(json.dumps({"listen": self.server.listen, "sni": sni, "host": host,
                                "path": self.path}) + "\n")
        try:
            with open(a.routes) as f:
                routes = json.load(f)
        except (OSError, ValueError):
            routes = {}
        r = routes.get(host + " " + self.path)
        if r is None and self.path == "/_matrix/federation/v1/version":
            r = {"status": 200, "body": json.dumps({"server": {"name": "wk_https",
                                                               "version": self.server.listen}})}
        if r is None:
            r = {"status": 404, "body": "{}"}
        body = r.get("body", "").encode()
        self.send_response(r.get("status", 200))
        for k, v in r.get("headers", {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


servers = []
for l in a.listen:
    l, _, default = l.partition("=")
    host, port = l.rsplit(":", 1)
    cls = ThreadingHTTPServer
    if host.startswith("["):
        host = host[1:-1]
        cls = type("S6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    s = cls((host, int(port)), H)
    s.listen = l
    s.socket = make_ctx(l, default or "default").wrap_socket(s.socket, server_side=True)
    servers.append(s)
    threading.Thread(target=s.serve_forever, daemon=True).start()
with open(a.ready, "w") as f:
    f.write("ready\n")
threading.Event().wait()
