#!/usr/bin/env python3
"""syncd_lmdb.py: plays validated's part on a node's inbox for syncd tests,
through liblmdb itself (ctypes; no Python LMDB module needed).
usage: syncd_lmdb.py drain STATE_DIR MAP_BYTES OUT   delete every inbox entry,
                                                      appending each event's depth to OUT
       syncd_lmdb.py depths STATE_DIR MAP_BYTES      print the depth of every inbox entry
MAP_BYTES must be the node's [node] map_size (a larger one would grow the
file). An event's depth identifies it in a served_fill chain."""
import ctypes, re, sys

lib = ctypes.CDLL("liblmdb.so.0")


class Val(ctypes.Structure):
    _fields_ = [("mv_size", ctypes.c_size_t), ("mv_data", ctypes.c_void_p)]


MDB_FIRST, MDB_NEXT, MDB_RDONLY = 0, 8, 0x20000
lib.mdb_strerror.restype = ctypes.c_char_p


def ok(rc, what):
    if rc:
        sys.exit(f"{what}: {lib.mdb_strerror(rc).decode()}")


def depth(v):
    b = ctypes.string_at(v.mv_data, v.mv_size)
    m = re.search(rb'"depth":(\d+)', b)
    return int(m.group(1)) if m else -1


op, path, mapsize = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = ctypes.c_void_p()
ok(lib.mdb_env_create(ctypes.byref(env)), "env_create")
ok(lib.mdb_env_set_maxdbs(env, 64), "set_maxdbs")
ok(lib.mdb_env_set_mapsize(env, ctypes.c_size_t(mapsize)), "set_mapsize")
ok(lib.mdb_env_open(env, path.encode(), 0, 0o600), "env_open")
txn, dbi, cur = ctypes.c_void_p(), ctypes.c_uint(), ctypes.c_void_p()
ok(lib.mdb_txn_begin(env, None, MDB_RDONLY if op == "depths" else 0, ctypes.byref(txn)), "txn_begin")
ok(lib.mdb_dbi_open(txn, b"inbox", 0, ctypes.byref(dbi)), "dbi_open inbox")
ok(lib.mdb_cursor_open(txn, dbi, ctypes.byref(cur)), "cursor_open")
k, v = Val(), Val()
if op == "depths":
    rc = lib.mdb_cursor_get(cur, ctypes.byref(k), ctypes.byref(v), MDB_FIRST)
    while rc == 0:
        print(depth(v))
        rc = lib.mdb_cursor_get(cur, ctypes.byref(k), ctypes.byref(v), MDB_NEXT)
    lib.mdb_txn_abort(txn)
else:
    out = []
    while lib.mdb_cursor_get(cur, ctypes.byref(k), ctypes.byref(v), MDB_FIRST) == 0:
        out.append(depth(v))
        ok(lib.mdb_cursor_del(cur, 0), "cursor_del")
    lib.mdb_cursor_close(cur)
    ok(lib.mdb_txn_commit(txn), "commit")
    with open(sys.argv[4], "a") as f:
        for d in out:
            f.write(f"{d}\n")
    print(len(out))
lib.mdb_env_close(env)
