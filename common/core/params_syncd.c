/* params_syncd.c: parameters of syncd ([syncd] section): pull pacing,
 * backoff, request limits. Peers themselves are [peer NAME] sections. */
#include <stddef.h>
#include "core/config.h"

const struct param params_syncd[] = {
	P_DUR("syncd", "interval", "30s", "10ms", "24h", "wait between pulls of a peer that has nothing new"),
	P_DUR("syncd", "backoff_max", "5m", "1ms", "24h", "longest wait after repeated failures (doubles from interval)"),
	P_INT("syncd", "batch", "100", "1", "100", "events asked for per pull (served caps at 100)"),
	P_DUR("syncd", "longpoll", "25s", "0", "10m", "timeout_ms asked of the peer when caught up (0: no long-poll)"),
	P_DUR("syncd", "connect_timeout", "5s", "10ms", "10m", "TCP/TLS connect timeout"),
	P_DUR("syncd", "timeout", "60s", "100ms", "24h", "whole-request timeout (added to the long-poll time)"),
	P_DUR("syncd", "low_speed_time", "10s", "1s", "1h", "abort a transfer slower than 1 byte/s for this long (slowloris)"),
	P_SIZE("syncd", "max_body", "8M", "1K", "1G", "largest peer answer accepted"),
	P_INT("syncd", "inbox_high", "20000", "1", "1000000000", "stop pulling while the inbox holds more entries than this"),
	P_END
};
