/* params_validated.c: parameters of validated ([validated] section). */
#include <stddef.h>
#include "core/config.h"

const struct param params_validated[] = {
	P_BOOL("validated", "check_event_id", "yes", "deep check: event_id (if carried or requested) is the reference hash"),
	P_BOOL("validated", "check_hashes", "yes", "deep check: content hash (mismatch: accepted redacted)"),
	P_BOOL("validated", "check_signatures", "yes", "deep check: ed25519 signature of the sender's server"),
	P_SIZE("validated", "raw_max", "1M", "1K", "64M", "largest raw PDU input accepted (canonical limit is 65536)"),
	P_INT("validated", "max_depth", "64", "1", "1024", "deepest JSON nesting accepted"),
	P_PATH("validated", "keys", "", "JSON file of /_matrix/key/v2/server documents (like --keys)"),
	P_INT("validated", "seen_cache", "65536", "0", "100000000", "recently verified event IDs remembered (0: off)"),
	P_INT("validated", "workers", "1", "1", "30", "validation worker threads (--jsonl, and the daemon: each loop turn's events split across them)"),
	P_DUR("validated", "rescan_every", "2s", "10ms", "1h", "daemon: how often the inbox is rescanned"),
	P_DUR("validated", "rescan_age", "3s", "0", "24h", "daemon: inbox entries older than this are re-validated"),
	P_INT("validated", "rescan_batch", "1000", "1", "1000000", "daemon: inbox entries handled per rescan turn"),
	P_DUR("validated", "key_fetch_retry", "30s", "10ms", "24h", "daemon: wait before asking fetchd again for a server's keys"),
	P_END
};
