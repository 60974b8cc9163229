#!/usr/bin/env python3
"""tls_peer.py: a small HTTPS federation peer for fetchd's TLS tests.

Serves one response body (a file) for every GET under
/_matrix/federation/v1/event/, 404 elsewhere, over TLS with the given
certificate, optionally capped at a TLS version. Writes its port to
--port-file once listening and logs one line per request (with the
negotiated TLS version) to stderr. Listens on 127.0.0.1 only.
"""
import argparse
import http.server
import ssl
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--body", required=True, help="file served for event requests")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--max-tls", choices=["1.0", "1.1", "1.2", "1.3"], default="1.3")
    a = ap.parse_args()
    body = open(a.body, "rb").read()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            ver = self.connection.version()
            ok = self.path.startswith("/_matrix/federation/v1/event/")
            sys.stderr.write("tls_peer: GET %s tls=%s ua=%s\n"
                             % (self.path, ver, self.headers.get("User-Agent", "-")))
            sys.stderr.flush()
            out = body if ok else b'{"errcode":"M_NOT_FOUND","error":"no"}'
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    if a.max_tls in ("1.0", "1.1"):
        # OpenSSL 3 refuses TLS < 1.2 at its default security level.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
                           "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[a.max_tls]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
