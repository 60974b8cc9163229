/* params_syncd.c: parameters of syncd ([syncd] section): pull pacing,
 * backoff, request limits. Peers themselves are [peer NAME] sections. */
#include <stddef.h>
#include "config.h"

const struct param params_syncd[] = {
	{ "syncd", "interval",        "30s", "wait between pulls of a peer that has nothing new" },
	{ "syncd", "backoff_max",     "5m", "longest wait after repeated failures (doubles from interval)" },
	{ "syncd", "batch",           "100", "events asked for per pull (served caps at 100)" },
	{ "syncd", "longpoll",        "25s", "timeout_ms asked of the peer when caught up (0: no long-poll)" },
	{ "syncd", "connect_timeout", "5s", "TCP/TLS connect timeout" },
	{ "syncd", "timeout",         "60s", "whole-request timeout (added to the long-poll time)" },
	{ "syncd", "low_speed_time",  "10s", "abort a transfer slower than 1 byte/s for this long (slowloris)" },
	{ "syncd", "max_body",        "8M", "largest peer answer accepted" },
	{ "syncd", "inbox_high",      "20000", "stop pulling while the inbox holds more entries than this" },
	{ NULL, NULL, NULL, NULL }
};
