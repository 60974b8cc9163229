#!/usr/bin/env python3
"""fleet_proxy.py: a logging HTTP proxy for the fleet tests. Each mapping
LISTEN_PORT:UPSTREAM_PORT:NODE:PEER listens on 127.0.0.1:LISTEN_PORT and
forwards every request (method, path, headers, body) to 127.0.0.1:UPSTREAM_PORT,
so one node's requests to one peer go through their own port. Each finished
request is logged as one line to LOG:
    <start_ns> <end_ns> <node> <peer> <status> <path>
so a test can tell which node pulled which peer, and whether two nodes'
requests to the same peer were ever in flight at the same moment. A node
that closes its connection while the peer still works (stopped or killed
during a long-poll) ends its request there: status "gone".
A slow peer on demand: while the file LOG.delay exists, holding a number of
seconds S, every request but /healthz waits S seconds before it is
forwarded (the file LOG.delaying is touched when one starts waiting).
usage: fleet_proxy.py LOG MAPPING..."""
import http.client, http.server, os, select, socket, socketserver, sys, threading, time

LOG = open(sys.argv[1], "a", buffering=1)
LOCK = threading.Lock()

def handler_for(upstream, node, peer):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a): pass
        def do_GET(self): self.forward()
        def do_POST(self): self.forward()
        def do_PUT(self): self.forward()
        def forward(self):
            t0 = time.time_ns()
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            res = {"status": 502, "data": b"", "hdrs": []}
            def up():
                try:
                    if self.path != "/healthz" and os.path.exists(sys.argv[1] + ".delay"):
                        with open(sys.argv[1] + ".delay") as f:
                            d = float(f.read().strip() or 0)
                        open(sys.argv[1] + ".delaying", "a").close()
                        time.sleep(d)
                    c = http.client.HTTPConnection("127.0.0.1", upstream, timeout=120)
                    h = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                    c.request(self.command, self.path, body=body, headers=h)
                    r = c.getresponse()
                    res["status"], res["data"] = r.status, r.read()
                    res["hdrs"] = [(k, v) for k, v in r.getheaders()
                                   if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive")]
                    c.close()
                except Exception as e:  # the peer is down: a 502, logged
                    res["data"] = str(e).encode()
            w = threading.Thread(target=up, daemon=True)
            w.start()
            # While the peer works (a long-poll), watch the node's side: a
            # node that closed its connection (stopped, killed) no longer
            # pulls, and its request ends there.
            gone = False
            while w.is_alive():
                w.join(0.02)
                r, _, _ = select.select([self.connection], [], [], 0)
                if r:
                    try:
                        gone = self.connection.recv(1, socket.MSG_PEEK) == b""
                    except OSError:
                        gone = True
                    if gone:
                        break
            if gone:
                self.close_connection = True
                with LOCK:
                    LOG.write(f"{t0} {time.time_ns()} {node} {peer} gone {self.path}\n")
                return
            status, data, hdrs = res["status"], res["data"], res["hdrs"]
            try:
                self.send_response(status)
                for k, v in hdrs: self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the node went away (killed): still logged
                self.close_connection = True
            with LOCK:
                LOG.write(f"{t0} {time.time_ns()} {node} {peer} {status} {self.path}\n")
    return H

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

servers = []
for m in sys.argv[2:]:
    lp, up, node, peer = m.split(":")
    s = Server(("127.0.0.1", int(lp)), handler_for(int(up), node, peer))
    threading.Thread(target=s.serve_forever, daemon=True).start()
    servers.append(s)
print("ready", flush=True)
try:
    threading.Event().wait()
except KeyboardInterrupt:
    pass
