"""validated_pdu.py: Matrix v10/v11 PDU signing with Debian's python3-signedjson
and python3-canonicaljson, an independent implementation the validated tests
compare against (import it from tests/integration/validated_*.py)."""
import base64, copy, hashlib, json, os, sys
try:
    import canonicaljson  # noqa: F401
except ImportError:       # a non-Debian python3 first on PATH: use Debian's
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise
from canonicaljson import encode_canonical_json
from signedjson.key import generate_signing_key, get_verify_key, encode_verify_key_base64
from signedjson.sign import sign_json, verify_signed_json


def b64(b):
    return base64.b64encode(b).decode().rstrip("=")


def b64url(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


V10_TOP = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
           "signatures", "depth", "prev_events", "prev_state", "auth_events", "origin",
           "origin_server_ts", "membership"}
V11_TOP = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
           "signatures", "depth", "prev_events", "auth_events", "origin_server_ts"}


def redact(ev, rv):
    top = V11_TOP if rv == 11 else V10_TOP
    out = {k: copy.deepcopy(v) for k, v in ev.items() if k in top}
    c = ev.get("content", {})
    t = ev.get("type")
    keep = []
    if t == "m.room.member":
        keep = ["membership", "join_authorised_via_users_server"]
    elif t == "m.room.create":
        keep = list(c.keys()) if rv == 11 else ["creator"]
    elif t == "m.room.join_rules":
        keep = ["join_rule", "allow"]
    elif t == "m.room.power_levels":
        keep = ["ban", "events", "events_default", "kick", "redact", "state_default",
                "users", "users_default"] + (["invite"] if rv == 11 else [])
    elif t == "m.room.history_visibility":
        keep = ["history_visibility"]
    elif t == "m.room.redaction" and rv == 11:
        keep = ["redacts"]
    nc = {k: copy.deepcopy(c[k]) for k in keep if k in c}
    if rv == 11 and t == "m.room.member" and isinstance(c.get("third_party_invite"), dict) \
            and "signed" in c["third_party_invite"]:
        nc["third_party_invite"] = {"signed": copy.deepcopy(c["third_party_invite"]["signed"])}
    out["content"] = nc
    return out


def content_hash(ev):
    e = {k: v for k, v in ev.items() if k not in ("unsigned", "signatures", "hashes")}
    return hashlib.sha256(encode_canonical_json(e)).digest()


def event_id(ev, rv):
    r = redact(ev, rv)
    r.pop("signatures", None)
    r.pop("unsigned", None)
    return "$" + b64url(hashlib.sha256(encode_canonical_json(r)).digest())


def sign_event(ev, server, sk, rv):
    ev = copy.deepcopy(ev)
    ev.pop("signatures", None)
    ev["hashes"] = {"sha256": b64(content_hash(ev))}
    signed = sign_json(redact(ev, rv), server, sk)
    ev["signatures"] = signed["signatures"]
    return ev


def verify_event(ev, server, vk, rv):
    """Content hash and signature, the way Synapse checks them."""
    if b64(content_hash(ev)) != ev["hashes"]["sha256"].rstrip("="):
        return False
    try:
        verify_signed_json(redact(ev, rv), server, vk)
        return True
    except Exception:
        return False


def new_key(version="a1"):
    return generate_signing_key(version)


def key_doc(server, sk, valid_until_ts=4102444800000):
    doc = {"server_name": server, "valid_until_ts": valid_until_ts,
           "verify_keys": {"%s:%s" % (sk.alg, sk.version):
                           {"key": encode_verify_key_base64(get_verify_key(sk))}},
           "old_verify_keys": {}}
    return sign_json(doc, server, sk)


def sample_event(server, n=0, rv=10, pad=600, etype="m.room.message"):
    ev = {"room_id": "!room%d:%s" % (n % 7, server), "sender": "@user%d:%s" % (n % 13, server),
          "type": etype, "content": {"body": "message %d " % n + "x" * pad, "msgtype": "m.text"},
          "origin_server_ts": 1700000000000 + n, "depth": n + 1,
          "prev_events": ["$" + b64url(hashlib.sha256(b"p%d" % n).digest())],
          "auth_events": ["$" + b64url(hashlib.sha256(b"a%d" % n).digest()),
                          "$" + b64url(hashlib.sha256(b"b%d" % n).digest())],
          "unsigned": {"age_ts": 1700000000000 + n}}
    if rv == 10:
        ev["origin"] = server
    return ev


def dumps(ev):
    return json.dumps(ev, separators=(",", ":"), ensure_ascii=False)
