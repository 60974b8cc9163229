/* params_validated.c: parameters of validated ([validated] section). */
#include <stddef.h>
#include "config.h"

const struct param params_validated[] = {
	{ "validated", "check_event_id",   "yes", "deep check: event_id (if carried or requested) is the reference hash" },
	{ "validated", "check_hashes",     "yes", "deep check: content hash (mismatch: accepted redacted)" },
	{ "validated", "check_signatures", "yes", "deep check: ed25519 signature of the sender's server" },
	{ "validated", "raw_max",          "1M",  "largest raw PDU input accepted (canonical limit is 65536)" },
	{ "validated", "max_depth",        "64",  "deepest JSON nesting accepted" },
	{ "validated", "keys",             "",    "JSON file of /_matrix/key/v2/server documents (like --keys)" },
	{ "validated", "seen_cache",       "65536", "recently verified event IDs remembered (0: off)" },
	{ "validated", "workers",          "1",   "validation worker threads (--jsonl, and the daemon: each loop turn's events split across them)" },
	{ "validated", "rescan_every",     "2s",  "daemon: how often the inbox is rescanned" },
	{ "validated", "rescan_age",       "3s",  "daemon: inbox entries older than this are re-validated" },
	{ "validated", "rescan_batch",     "1000", "daemon: inbox entries handled per rescan turn" },
	{ "validated", "key_fetch_retry",  "30s", "daemon: wait before asking fetchd again for a server's keys" },
	{ NULL, NULL, NULL, NULL }
};
