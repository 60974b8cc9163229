#!/usr/bin/env python3
"""fleet_forge.py: an outsider on the fleet's NATS, and an independent
implementation of the fleet MAC (common/feed/fleet_mac.h), for tests.

  fleet_forge.py key SIGNING_KEY_FILE             the fleet key (hex) derived
                                                  from a Synapse-format key
  fleet_forge.py mac KEYHEX LABEL A FILE          MAC of (LABEL, A, FILE's bytes)
  fleet_forge.py seal KEYHEX KVKEY VALUE          a sealed KV value
  fleet_forge.py open KEYHEX KVKEY SEALED         the value, exit 1 if the seal is wrong
  fleet_forge.py kvget PORT BUCKET KEY            a KV value as stored (JetStream API)
  fleet_forge.py pub PORT SUBJECT MSGID FILE [HDR=VAL...]
                                                  HPUB FILE's bytes (plain NATS, no auth)

The MAC: keyed BLAKE2b-256 over LABEL \\0 A \\0 BYTES, base64 without padding;
the key: BLAKE2b-256("fedpipe fleet mac v1", key = the ed25519 seed)."""
import base64, hashlib, socket, sys


def b64(b):
    return base64.b64encode(b).decode().rstrip("=")


def fleet_key(path):
    parts = open(path).read().split()
    seed = base64.b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    return hashlib.blake2b(b"fedpipe fleet mac v1", key=seed, digest_size=32).digest()


def mac(key, label, a, data):
    return b64(hashlib.blake2b(label.encode() + b"\0" + a.encode() + b"\0" + data, key=key,
                               digest_size=32).digest())


def main(argv):
    cmd = argv[1]
    if cmd == "key":
        print(fleet_key(argv[2]).hex())
    elif cmd == "mac":
        print(mac(bytes.fromhex(argv[2]), argv[3], argv[4], open(argv[5], "rb").read()))
    elif cmd == "seal":
        print("%s mac:%s" % (argv[4], mac(bytes.fromhex(argv[2]), "kv", argv[3], argv[4].encode())))
    elif cmd == "open":
        value, _, m = argv[4].rpartition(" mac:")
        if not value or mac(bytes.fromhex(argv[2]), "kv", argv[3], value.encode()) != m:
            return 1
        print(value)
    elif cmd == "kvget":
        import json
        port, bucket, key = int(argv[2]), argv[3], argv[4]
        s = socket.create_connection(("127.0.0.1", port))
        s.recv(4096)
        req = json.dumps({"last_by_subj": "$KV.%s.%s" % (bucket, key)}).encode()
        s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nSUB _INBOX.ff 1\r\n'
                  + b"PUB $JS.API.STREAM.MSG.GET.KV_%s _INBOX.ff %d\r\n" % (bucket.encode(), len(req))
                  + req + b"\r\n")
        got = b""
        while True:
            got += s.recv(65536)
            i = got.find(b"MSG _INBOX.ff")
            if i < 0:
                continue
            eol = got.find(b"\r\n", i)
            if eol < 0:
                continue
            n = int(got[i:eol].split()[-1])
            if len(got) >= eol + 2 + n:
                r = json.loads(got[eol + 2:eol + 2 + n])
                break
        if "message" not in r:
            print(r, file=sys.stderr)
            return 1
        print(base64.b64decode(r["message"]["data"]).decode())
    elif cmd == "pub":
        port, subject, msgid, body = int(argv[2]), argv[3], argv[4], open(argv[5], "rb").read()
        hdrs = "NATS/1.0\r\n" + ("Nats-Msg-Id: %s\r\n" % msgid if msgid else "")
        for h in argv[6:]:
            k, _, v = h.partition("=")
            hdrs += "%s: %s\r\n" % (k, v)
        hdr = (hdrs + "\r\n").encode()
        s = socket.create_connection(("127.0.0.1", port))
        s.recv(4096)
        s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\n'
                  + b"HPUB %s %d %d\r\n" % (subject.encode(), len(hdr), len(hdr) + len(body))
                  + hdr + body + b"\r\nPING\r\n")
        got = b""
        while b"PONG" not in got:
            got += s.recv(4096)
        if b"-ERR" in got:
            print(got.decode(errors="replace"), file=sys.stderr)
            return 1
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
