#!/usr/bin/python3
"""served_keyserver.py KEYFILE SERVER_NAME PORT HITSFILE [DELAY_S]: a tiny
homeserver key endpoint on 127.0.0.1:PORT. GET /_matrix/key/v2/server
answers SERVER_NAME's self-signed key document, made and signed with
python3-signedjson (Synapse's library) from the Synapse-format KEYFILE;
every such request is counted in HITSFILE (rewritten after each) and, with
DELAY_S, answered after that many seconds (so concurrent requests overlap
one fetch). Anything else: 404."""
import http.server, json, socketserver, sys, threading, time
import signedjson.key, signedjson.sign

keyfile, name, port, hitsfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
delay = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
sk = signedjson.key.read_signing_keys(open(keyfile))[0]
kid = "%s:%s" % (sk.alg, sk.version)
hits = 0
lock = threading.Lock()
open(hitsfile, "w").write("0\n")


def doc():
    d = {"server_name": name,
         "valid_until_ts": int(time.time() * 1000) + 3600 * 1000,
         "verify_keys": {kid: {"key": signedjson.key.encode_verify_key_base64(sk.verify_key)}},
         "old_verify_keys": {}}
    return signedjson.sign.sign_json(d, name, sk)


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global hits
        if self.path != "/_matrix/key/v2/server":
            body, code = b'{"errcode":"M_NOT_FOUND","error":"no"}', 404
        else:
            with lock:
                hits += 1
                open(hitsfile, "w").write("%d\n" % hits)
            if delay:
                time.sleep(delay)
            body, code = json.dumps(doc()).encode(), 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


S(("127.0.0.1", port), H).serve_forever()
