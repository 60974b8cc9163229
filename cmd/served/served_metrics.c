/* served_metrics.c: GET /metrics (Prometheus text format) and /healthz.
 * /metrics asks every stage's socket for FT_STATS concurrently (async
 * bufferevents on the loop, one short timeout for all), adds served's own
 * counters and the LMDB table sizes, then answers. A stage that is down or
 * slow shows as fedpipe_stage_up{stage="x"} 0; the loop is never blocked. */
#include "served.h"
#include "core/log.h"
#include "core/histo.h"
#include "core/stages.h"
#include "core/xalloc.h"
#include "matrix/json.h"
#include "store/events.h"
#include "store/outbox.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <event2/bufferevent.h>

/* The other stages (the stage table in flow order, served itself left
 * out: it samples its own counters directly). */
#define NSTAGES (STAGE_COUNT - 1)

struct scrape {
	struct served *s;
	struct evhttp_request *req;
	const char *stage[NSTAGES];
	struct bufferevent *bev[NSTAGES];
	char *reply[NSTAGES];
	int pending;
	struct event *timeout;
};

static void scrape_stages(struct scrape *sc, const char *self)
{
	size_t n = 0;
	for (size_t i = 0; i < STAGE_COUNT; i++) {
		const struct stage *sg = stage_in_flow(i);
		if (strcmp(sg->name, self) != 0 && n < NSTAGES)
			sc->stage[n++] = sg->name;
	}
}

/* ---------- the metric table: the one place stats names become families ----------
 * Every stage's stats frame (FT_STATS, core/daemon.c) keeps its JSON keys
 * as they are (fedctl stats/status and the tests read them); here each
 * (stage, key) is given a family, a type, help and labels. A key ending in
 * '.' matches a prefix: the rest of the name becomes the value of the
 * entry's label (reject.<reason>, lag_events.<peer>). A key not in the
 * table is still exposed, with its stage and name as labels, in
 * fedpipe_stage_other_total, fedpipe_stage_other or
 * fedpipe_stage_other_observations; tests/integration/metrics_promtool.sh
 * fails when one shows up, and when a counter or gauge name in the sources
 * is missing here. */
enum mtype { MT_COUNTER, MT_GAUGE, MT_HISTO };
enum mkind { MK_C, MK_G, MK_X, MK_H };   /* counters, gauges, top-level extra, histograms */

struct family { const char *name; enum mtype type; const char *help; };

enum {
	F_STAGE_UP, F_STAGE_UPTIME, F_STAGE_COUNTER, F_STAGE_GAUGE, F_STAGE_HISTO,
	F_FRAMES_IN, F_FRAMES_OUT, F_FRAMES_UNSENT, F_BAD_FRAMES, F_SOCKET_REFUSED,
	/* fetchd */
	F_FETCH_RECEIVED, F_FETCH_REQUESTS, F_FETCH_COALESCED, F_FETCH_REVIVED, F_FETCH_QUEUED,
	F_FETCH_UPSTREAM, F_FETCH_ATTEMPT_FAIL, F_FETCH_REPLIES_DROPPED, F_FETCH_BUSY_RECOVERIES,
	F_FETCH_BAD_NAMES, F_FETCH_DENIED, F_FETCH_EVICTED, F_FETCH_HEALTH_PRUNED,
	F_FETCH_HEALTH_ERRORS, F_RESOLVE_LOOKUPS, F_RESOLVE_CACHED, F_RESOLVE_FAILED,
	F_RESOLVE_WRITE_ERRORS, F_RESOLVE_PENDING, F_FETCH_SERVERS, F_FETCH_INFLIGHT, F_FETCH_QUEUE, F_FETCH_CALLERS,
	F_FETCH_INFLIGHT_PEAK, F_FETCH_ATTEMPT_SECONDS, F_FETCH_SECONDS,
	/* validated */
	F_VAL_VALIDATED, F_VAL_VERDICTS, F_VAL_REJECTS, F_VAL_REDACTED, F_VAL_SKIPPED,
	F_VAL_KEY_FETCHES, F_VAL_WAITS, F_VAL_KEYS_REFUSED, F_KEY_CONFLICTS, F_VAL_RESCANNED,
	F_VAL_WAITING, F_VAL_SEEN_HITS, F_VAL_LOOKUPS_SKIPPED, F_VAL_WORKERS, F_VAL_SECONDS,
	/* purgatoryd */
	F_PURG_VERDICTS, F_EVENTS_STORED, F_PURG_HELD, F_PURG_RELEASED, F_PURG_REJECTED,
	F_PURG_DUPS, F_PURG_EXPIRED, F_PURG_BATCHES, F_PURG_FETCH_REQS, F_PURG_FETCHES, F_PURG_FETCHED,
	F_PURG_BAD_VERDICTS, F_PURG_ACL_BLOCKED, F_PURG_REJECTS_PRUNED, F_PURG_HELD_NOW,
	F_PURG_HELD_ROOMS, F_PURG_FETCH_INFLIGHT, F_PURG_OLDEST_HELD, F_PURG_COMMIT_SECONDS,
	F_PURG_BATCH_EVENTS,
	/* feedpump */
	F_FEED_PUBLISHED, F_FEED_FAILURES, F_FEED_DEAD, F_FEED_BATCHES, F_FEED_WAKEUPS,
	F_FEED_CURSOR, F_FEED_LEASE, F_FEED_BACKLOG, F_FEED_PUBLISH_SECONDS,
	F_FEED_FLEET_APPLIED, F_FEED_FLEET_CURSOR, F_FEED_FLEET_WAKES,
	/* syncd */
	F_SYNC_PULLS, F_SYNC_EVENTS, F_SYNC_SKIPPED, F_SYNC_FAILURES, F_SYNC_LONGPOLLS,
	F_SYNC_RESENT, F_SYNC_BYTES, F_SYNC_IDENTITY_REFUSED, F_SYNC_STORE_FULL,
	F_SYNC_STORE_FULL_WAITS, F_SYNC_ACTIVE, F_SYNC_PEER_EVENTS, F_SYNC_PEER_FAILS,
	F_SYNC_PEER_PHASE, F_SYNC_LAG_EVENTS, F_SYNC_LAG_SECONDS, F_SYNC_FLEET_NOT_HOLDER,
	F_SYNC_PEER_FORBIDDEN,
	/* fleetd */
	F_FLEET_HELD, F_FLEET_MEMBERS, F_FLEET_PEERS, F_FLEET_TAKES, F_FLEET_RENEWALS, F_FLEET_LOSSES,
	F_FLEET_RELEASES, F_FLEET_CAS_LOST, F_FLEET_NATS_ERRORS, F_FLEET_CURSOR_PUTS, F_FLEET_COPIED, F_FLEET_KV_REFUSED,
	/* served */
	F_HTTP_REQUESTS, F_HTTP_ERRORS, F_HTTP_UNAUTHORIZED, F_HTTP_UNAUTH_EARLY, F_RECOVER_PDUS, F_HTTP_PROXIED, F_EVENT_LOOKUPS,
	F_RECOVER, F_LONGPOLLS, F_EVENTS_SERVED, F_CONN_REFUSED, F_ACCEPT_ERRORS, F_HTTP_TIMEOUTS,
	F_CLAIMS_SWEPT, F_XMATRIX, F_XMATRIX_KEY_FETCHES, F_ACL_FORBIDDEN, F_HTTP_NOT_PUBLISHING, F_HTTP_CONNS,
	F_LONGPOLL_WAITERS, F_RECOVER_QUEUE, F_RECOVER_INFLIGHT, F_XMATRIX_KEY_WAITERS,
	/* the store */
	F_LMDB_ENTRIES, F_LMDB_USED,
	F__COUNT
};

static const struct family fam[F__COUNT] = {
#define FAM(e, n, t, h) [e] = { n, t, h }
	FAM(F_STAGE_UP, "fedpipe_stage_up", MT_GAUGE, "Whether the stage answered its stats request (1) or not (0)."),
	FAM(F_STAGE_UPTIME, "fedpipe_stage_uptime_seconds", MT_GAUGE, "Seconds since the stage started."),
	FAM(F_STAGE_COUNTER, "fedpipe_stage_other_total", MT_COUNTER, "A stage counter with no family of its own yet (name label)."),
	FAM(F_STAGE_GAUGE, "fedpipe_stage_other", MT_GAUGE, "A stage gauge with no family of its own yet (name label)."),
	FAM(F_STAGE_HISTO, "fedpipe_stage_other_observations", MT_HISTO, "A stage histogram with no family of its own yet (name label; latencies in seconds)."),
	FAM(F_FRAMES_IN, "fedpipe_frames_received_total", MT_COUNTER, "Frames received on the stage's sockets."),
	FAM(F_FRAMES_OUT, "fedpipe_frames_sent_total", MT_COUNTER, "Frames handed to the next stage."),
	FAM(F_FRAMES_UNSENT, "fedpipe_frames_unsent_total", MT_COUNTER, "Frames the next stage's connection refused (down or over its high-water mark; recovered from LMDB)."),
	FAM(F_BAD_FRAMES, "fedpipe_bad_frames_total", MT_COUNTER, "Malformed frames received."),
	FAM(F_SOCKET_REFUSED, "fedpipe_socket_refused_total", MT_COUNTER, "Connections refused on the stage's socket (the peer's uid/group not allowed)."),
	FAM(F_FETCH_RECEIVED, "fedpipe_fetch_requests_received_total", MT_COUNTER, "Fetch requests received by fetchd."),
	FAM(F_FETCH_REQUESTS, "fedpipe_fetch_requests_total", MT_COUNTER, "Fetch requests by outcome (result label)."),
	FAM(F_FETCH_COALESCED, "fedpipe_fetch_coalesced_total", MT_COUNTER, "Fetch requests joined to an identical fetch in progress."),
	FAM(F_FETCH_REVIVED, "fedpipe_fetch_revived_total", MT_COUNTER, "Orphaned fetches revived by a new caller."),
	FAM(F_FETCH_QUEUED, "fedpipe_fetch_queued_total", MT_COUNTER, "Fetches that waited in the queue for a slot."),
	FAM(F_FETCH_UPSTREAM, "fedpipe_fetch_attempts_total", MT_COUNTER, "HTTP requests made to remote servers (attempts)."),
	FAM(F_FETCH_ATTEMPT_FAIL, "fedpipe_fetch_attempts_failed_total", MT_COUNTER, "Attempts that failed (transport error, bad or refused answer)."),
	FAM(F_FETCH_REPLIES_DROPPED, "fedpipe_fetch_replies_dropped_total", MT_COUNTER, "Replies dropped because the caller had gone."),
	FAM(F_FETCH_BUSY_RECOVERIES, "fedpipe_fetch_busy_recoveries_total", MT_COUNTER, "Low-priority recovery fetches refused as busy."),
	FAM(F_FETCH_BAD_NAMES, "fedpipe_fetch_bad_server_names_total", MT_COUNTER, "Candidate server names refused by the grammar."),
	FAM(F_FETCH_DENIED, "fedpipe_fetch_denied_addresses_total", MT_COUNTER, "Connections refused by the address policy (ip_range_deny)."),
	FAM(F_FETCH_EVICTED, "fedpipe_fetch_servers_evicted_total", MT_COUNTER, "Idle remote servers evicted from the server table."),
	FAM(F_FETCH_HEALTH_PRUNED, "fedpipe_fetch_health_pruned_total", MT_COUNTER, "Server health records pruned."),
	FAM(F_FETCH_HEALTH_ERRORS, "fedpipe_fetch_health_write_errors_total", MT_COUNTER, "Server health writes that failed."),
	FAM(F_RESOLVE_LOOKUPS, "fedpipe_resolve_lookups_total", MT_COUNTER, "Server name resolutions run (no fresh result in LMDB server_resolution)."),
	FAM(F_RESOLVE_CACHED, "fedpipe_resolve_cached_total", MT_COUNTER, "Server names resolved from LMDB server_resolution, with no lookup."),
	FAM(F_RESOLVE_FAILED, "fedpipe_resolve_failed_total", MT_COUNTER, "Fetch attempts failed because the server name resolved to no target."),
	FAM(F_RESOLVE_WRITE_ERRORS, "fedpipe_resolve_write_errors_total", MT_COUNTER, "Resolution results that could not be written to LMDB."),
	FAM(F_RESOLVE_PENDING, "fedpipe_resolve_pending", MT_GAUGE, "Server name resolutions in progress."),
	FAM(F_FETCH_SERVERS, "fedpipe_fetch_servers", MT_GAUGE, "Remote servers in fetchd's table."),
	FAM(F_FETCH_INFLIGHT, "fedpipe_fetch_inflight", MT_GAUGE, "Fetches running now."),
	FAM(F_FETCH_QUEUE, "fedpipe_fetch_queue", MT_GAUGE, "Fetches waiting for a slot."),
	FAM(F_FETCH_CALLERS, "fedpipe_fetch_callers", MT_GAUGE, "Callers waiting for a fetch's answer."),
	FAM(F_FETCH_INFLIGHT_PEAK, "fedpipe_fetch_inflight_peak", MT_GAUGE, "Most fetches running at once since start."),
	FAM(F_FETCH_ATTEMPT_SECONDS, "fedpipe_fetch_attempt_duration_seconds", MT_HISTO, "Time of one HTTP attempt at one remote server, to its answer or failure (millisecond resolution; attempts cancelled by a sibling's answer are not observed)."),
	FAM(F_FETCH_SECONDS, "fedpipe_fetch_duration_seconds", MT_HISTO, "Time from a caller's fetch request to its answer, every attempt included (millisecond resolution; callers that timed out or cancelled are not observed)."),
	FAM(F_VAL_VALIDATED, "fedpipe_validate_events_total", MT_COUNTER, "Events validated (each attempt, re-validations included)."),
	FAM(F_VAL_VERDICTS, "fedpipe_validate_verdicts_total", MT_COUNTER, "Verdicts sent to purgatoryd (verdict label: accepted, rejected)."),
	FAM(F_VAL_REJECTS, "fedpipe_validate_rejects_total", MT_COUNTER, "Rejected events by reason."),
	FAM(F_VAL_REDACTED, "fedpipe_validate_redacted_total", MT_COUNTER, "Accepted events redacted (content hash mismatch)."),
	FAM(F_VAL_SKIPPED, "fedpipe_validate_skipped_total", MT_COUNTER, "Events not verified again (why label: stored, recent)."),
	FAM(F_VAL_KEY_FETCHES, "fedpipe_validate_key_fetches_total", MT_COUNTER, "Server key fetches asked for."),
	FAM(F_VAL_WAITS, "fedpipe_validate_key_waits_total", MT_COUNTER, "Events set aside to wait for a server's keys."),
	FAM(F_VAL_KEYS_REFUSED, "fedpipe_validate_keys_refused_total", MT_COUNTER, "Key documents refused."),
	FAM(F_KEY_CONFLICTS, "fedpipe_key_conflicts_total", MT_COUNTER, "Keys refused because they conflict with a stored key (stage label)."),
	FAM(F_VAL_RESCANNED, "fedpipe_validate_rescanned_total", MT_COUNTER, "Inbox entries validated again by the rescan."),
	FAM(F_VAL_WAITING, "fedpipe_validate_waiting_for_keys", MT_GAUGE, "Events waiting for a server's keys now."),
	FAM(F_VAL_SEEN_HITS, "fedpipe_validate_seen_cache_hits_total", MT_COUNTER, "Events found in the recently-verified cache."),
	FAM(F_VAL_LOOKUPS_SKIPPED, "fedpipe_validate_store_lookups_skipped_total", MT_COUNTER, "Live events not looked up in the store (lookups had stopped finding anything); verified in full instead."),
	FAM(F_VAL_WORKERS, "fedpipe_validate_workers", MT_GAUGE, "Validation worker threads."),
	FAM(F_VAL_SECONDS, "fedpipe_validate_duration_seconds", MT_HISTO, "Time to validate one event (parse, hashes, signatures)."),
	FAM(F_PURG_VERDICTS, "fedpipe_purgatory_verdicts_total", MT_COUNTER, "Verdicts received by purgatoryd."),
	FAM(F_EVENTS_STORED, "fedpipe_events_stored_total", MT_COUNTER, "Events written to the event store."),
	FAM(F_PURG_HELD, "fedpipe_purgatory_held_total", MT_COUNTER, "Events held for missing prev/auth events."),
	FAM(F_PURG_RELEASED, "fedpipe_purgatory_released_total", MT_COUNTER, "Held events released once their prev/auth events were stored."),
	FAM(F_PURG_REJECTED, "fedpipe_purgatory_rejected_total", MT_COUNTER, "Events rejected (by validated or by a rejected ancestor)."),
	FAM(F_PURG_DUPS, "fedpipe_purgatory_duplicates_total", MT_COUNTER, "Events already stored."),
	FAM(F_PURG_EXPIRED, "fedpipe_purgatory_expired_total", MT_COUNTER, "Held events dropped after the hold time."),
	FAM(F_PURG_BATCHES, "fedpipe_store_commits_total", MT_COUNTER, "Event store write transactions committed."),
	FAM(F_PURG_FETCH_REQS, "fedpipe_purgatory_fetch_requests_total", MT_COUNTER, "Fetches of missing events asked of fetchd."),
	FAM(F_PURG_FETCHES, "fedpipe_purgatory_fetches_total", MT_COUNTER, "Fetches of missing events by result (ok, failed)."),
	FAM(F_PURG_FETCHED, "fedpipe_purgatory_fetched_events_total", MT_COUNTER, "Missing events received from fetches."),
	FAM(F_PURG_BAD_VERDICTS, "fedpipe_purgatory_bad_verdicts_total", MT_COUNTER, "Malformed verdict frames."),
	FAM(F_PURG_ACL_BLOCKED, "fedpipe_purgatory_acl_blocked_total", MT_COUNTER, "Events held only because of a server ACL."),
	FAM(F_PURG_REJECTS_PRUNED, "fedpipe_purgatory_rejects_pruned_total", MT_COUNTER, "Old reject records pruned."),
	FAM(F_PURG_HELD_NOW, "fedpipe_purgatory_held_events", MT_GAUGE, "Events held now."),
	FAM(F_PURG_HELD_ROOMS, "fedpipe_purgatory_held_rooms", MT_GAUGE, "Rooms with held events now."),
	FAM(F_PURG_FETCH_INFLIGHT, "fedpipe_purgatory_fetch_inflight", MT_GAUGE, "Fetches of missing events running now."),
	FAM(F_PURG_OLDEST_HELD, "fedpipe_purgatory_oldest_held_age_seconds", MT_GAUGE, "Age of the oldest held event (0: none held)."),
	FAM(F_PURG_COMMIT_SECONDS, "fedpipe_store_commit_duration_seconds", MT_HISTO, "Time of one event store write transaction, commit included."),
	FAM(F_PURG_BATCH_EVENTS, "fedpipe_store_commit_events", MT_HISTO, "Verdicts written per event store transaction."),
	FAM(F_FEED_PUBLISHED, "fedpipe_feed_published_total", MT_COUNTER, "Events published to the feed sink."),
	FAM(F_FEED_FAILURES, "fedpipe_feed_publish_failures_total", MT_COUNTER, "Publish attempts that failed (retried)."),
	FAM(F_FEED_DEAD, "fedpipe_feed_dead_lettered_total", MT_COUNTER, "Events moved to the dead-letter table."),
	FAM(F_FEED_BATCHES, "fedpipe_feed_batches_total", MT_COUNTER, "Outbox drain batches."),
	FAM(F_FEED_WAKEUPS, "fedpipe_feed_wakeups_total", MT_COUNTER, "Wake-ups from purgatoryd."),
	FAM(F_FEED_CURSOR, "fedpipe_feed_cursor", MT_GAUGE, "The outbox sequence number published up to."),
	FAM(F_FEED_LEASE, "fedpipe_feed_lease_held", MT_GAUGE, "Whether this node holds the drain lease (1) or not (0)."),
	FAM(F_FEED_BACKLOG, "fedpipe_feed_outbox_backlog", MT_GAUGE, "Outbox entries not yet published."),
	FAM(F_FEED_PUBLISH_SECONDS, "fedpipe_feed_publish_duration_seconds", MT_HISTO, "Time to publish one drain batch to the sink."),
	FAM(F_FEED_FLEET_APPLIED, "fedpipe_feed_fleet_applied_total", MT_COUNTER, "Events of the fleet feed applied into this node's store."),
	FAM(F_FEED_FLEET_CURSOR, "fedpipe_feed_fleet_apply_cursor", MT_GAUGE, "The fleet stream sequence applied up to."),
	FAM(F_FEED_FLEET_WAKES, "fedpipe_feed_fleet_purgatory_wakes_total", MT_COUNTER, "Applied batches whose event IDs were sent to purgatoryd, to release what it holds for them."),
	FAM(F_SYNC_PULLS, "fedpipe_sync_pulls_total", MT_COUNTER, "Pages pulled from peers."),
	FAM(F_SYNC_EVENTS, "fedpipe_sync_events_pulled_all_total", MT_COUNTER, "Events pulled from all peers."),
	FAM(F_SYNC_SKIPPED, "fedpipe_sync_pulls_skipped_total", MT_COUNTER, "Pull rounds skipped: the peer's clock showed nothing new."),
	FAM(F_SYNC_FAILURES, "fedpipe_sync_failures_total", MT_COUNTER, "Failed pulls from peers."),
	FAM(F_SYNC_LONGPOLLS, "fedpipe_sync_longpolls_total", MT_COUNTER, "Long polls made to peers."),
	FAM(F_SYNC_RESENT, "fedpipe_sync_inbox_resent_total", MT_COUNTER, "Inbox entries sent to validated again after a reconnect."),
	FAM(F_SYNC_BYTES, "fedpipe_sync_received_bytes_total", MT_COUNTER, "Bytes pulled from peers."),
	FAM(F_SYNC_IDENTITY_REFUSED, "fedpipe_sync_identity_refused_total", MT_COUNTER, "Peers refused because their identity did not match."),
	FAM(F_SYNC_STORE_FULL, "fedpipe_sync_store_full_total", MT_COUNTER, "Inbox batches that found the store full."),
	FAM(F_SYNC_STORE_FULL_WAITS, "fedpipe_sync_store_full_waits_total", MT_COUNTER, "Pulls deferred while the store was full."),
	FAM(F_SYNC_ACTIVE, "fedpipe_sync_peers_syncing", MT_GAUGE, "Peers being synced now."),
	FAM(F_SYNC_PEER_FORBIDDEN, "fedpipe_sync_peer_not_publishing_total", MT_COUNTER, "Pull rounds that found the peer in subscribe mode (it does not publish; retried every backoff_max)."),
	FAM(F_SYNC_FLEET_NOT_HOLDER, "fedpipe_sync_fleet_not_holder_total", MT_COUNTER, "Requests to a peer not made: another fleet member holds its lease."),
	FAM(F_FLEET_HELD, "fedpipe_fleet_leases_held", MT_GAUGE, "Peer leases this fleet member holds."),
	FAM(F_FLEET_MEMBERS, "fedpipe_fleet_members", MT_GAUGE, "Live fleet members (heartbeats in the KV bucket)."),
	FAM(F_FLEET_PEERS, "fedpipe_fleet_peers", MT_GAUGE, "Peers leased through the fleet."),
	FAM(F_FLEET_TAKES, "fedpipe_fleet_lease_takes_total", MT_COUNTER, "Peer leases taken."),
	FAM(F_FLEET_RENEWALS, "fedpipe_fleet_lease_renewals_total", MT_COUNTER, "Peer leases renewed."),
	FAM(F_FLEET_LOSSES, "fedpipe_fleet_lease_losses_total", MT_COUNTER, "Peer leases lost (expired or taken by another member)."),
	FAM(F_FLEET_RELEASES, "fedpipe_fleet_lease_releases_total", MT_COUNTER, "Peer leases released over this member's share."),
	FAM(F_FLEET_CAS_LOST, "fedpipe_fleet_cas_lost_total", MT_COUNTER, "Compare-and-set writes another member won."),
	FAM(F_FLEET_NATS_ERRORS, "fedpipe_fleet_nats_errors_total", MT_COUNTER, "NATS requests that failed."),
	FAM(F_FLEET_CURSOR_PUTS, "fedpipe_fleet_cursor_puts_total", MT_COUNTER, "Peer cursors written to the fleet's KV."),
	FAM(F_FLEET_COPIED, "fedpipe_fleet_state_copied_total", MT_COUNTER, "Fleet cursors copied into this node's store on taking a lease."),
	FAM(F_FLEET_KV_REFUSED, "fedpipe_fleet_kv_refused_total", MT_COUNTER, "Fleet KV values (cursors, identities) ignored for want of a valid fleet MAC."),
	FAM(F_SYNC_PEER_EVENTS, "fedpipe_sync_events_pulled_total", MT_COUNTER, "Events pulled per peer."),
	FAM(F_SYNC_PEER_FAILS, "fedpipe_sync_peer_consecutive_failures", MT_GAUGE, "A peer's failures in a row (0: healthy)."),
	FAM(F_SYNC_PEER_PHASE, "fedpipe_sync_peer_phase", MT_GAUGE, "A peer's phase (1 on the phase label's value)."),
	FAM(F_SYNC_LAG_EVENTS, "fedpipe_sync_peer_lag_events", MT_GAUGE, "Events the peer has that this node has not pulled yet (its head minus our cursor)."),
	FAM(F_SYNC_LAG_SECONDS, "fedpipe_sync_peer_lag_seconds", MT_GAUGE, "Seconds since this node was last caught up with the peer (0: caught up)."),
	FAM(F_HTTP_REQUESTS, "fedpipe_http_requests_total", MT_COUNTER, "HTTP requests served."),
	FAM(F_HTTP_ERRORS, "fedpipe_http_errors_total", MT_COUNTER, "HTTP requests answered with an error."),
	FAM(F_HTTP_UNAUTHORIZED, "fedpipe_http_unauthorized_total", MT_COUNTER, "HTTP requests refused for authentication."),
	FAM(F_HTTP_UNAUTH_EARLY, "fedpipe_http_unauthorized_before_body_total", MT_COUNTER, "Of those, refused from their headers, the body left unread."),
	FAM(F_RECOVER_PDUS, "fedpipe_recover_pdus_total", MT_COUNTER, "PDUs obtained by recovery requests."),
	FAM(F_HTTP_PROXIED, "fedpipe_http_proxied_requests_total", MT_COUNTER, "HTTP requests proxied."),
	FAM(F_EVENT_LOOKUPS, "fedpipe_http_event_lookups_total", MT_COUNTER, "Event lookups by result (hit, miss)."),
	FAM(F_RECOVER, "fedpipe_recover_total", MT_COUNTER, "Recovery requests by what happened to them (what label)."),
	FAM(F_LONGPOLLS, "fedpipe_http_longpolls_total", MT_COUNTER, "Long polls answered."),
	FAM(F_EVENTS_SERVED, "fedpipe_http_events_served_total", MT_COUNTER, "Events sent to peers and clients."),
	FAM(F_CONN_REFUSED, "fedpipe_http_connections_refused_total", MT_COUNTER, "HTTP connections refused (limit label: total, per_ip)."),
	FAM(F_ACCEPT_ERRORS, "fedpipe_http_accept_errors_total", MT_COUNTER, "accept() errors."),
	FAM(F_HTTP_TIMEOUTS, "fedpipe_http_timeouts_total", MT_COUNTER, "HTTP requests timed out (phase label: header, body)."),
	FAM(F_CLAIMS_SWEPT, "fedpipe_recover_claims_swept_total", MT_COUNTER, "Stale recovery claims removed."),
	FAM(F_XMATRIX, "fedpipe_xmatrix_requests_total", MT_COUNTER, "X-Matrix authenticated requests by result (ok, refused)."),
	FAM(F_XMATRIX_KEY_FETCHES, "fedpipe_xmatrix_key_fetches_total", MT_COUNTER, "Key fetches made to check X-Matrix requests."),
	FAM(F_HTTP_NOT_PUBLISHING, "fedpipe_http_not_publishing_total", MT_COUNTER, "Requests refused 403 because this node is in [node] mode = subscribe (does not publish)."),
	FAM(F_ACL_FORBIDDEN, "fedpipe_http_acl_forbidden_total", MT_COUNTER, "Requests refused by a room's server ACL."),
	FAM(F_HTTP_CONNS, "fedpipe_http_connections", MT_GAUGE, "HTTP connections open now."),
	FAM(F_LONGPOLL_WAITERS, "fedpipe_http_longpoll_waiters", MT_GAUGE, "Long polls waiting now."),
	FAM(F_RECOVER_QUEUE, "fedpipe_recover_queue", MT_GAUGE, "Recovery requests queued now."),
	FAM(F_RECOVER_INFLIGHT, "fedpipe_recover_inflight", MT_GAUGE, "Recovery requests running now."),
	FAM(F_XMATRIX_KEY_WAITERS, "fedpipe_xmatrix_key_waiters", MT_GAUGE, "Requests waiting for a key fetch now."),
	FAM(F_LMDB_ENTRIES, "fedpipe_lmdb_entries", MT_GAUGE, "Entries in each LMDB named database."),
	FAM(F_LMDB_USED, "fedpipe_lmdb_used_bytes", MT_GAUGE, "Bytes of the LMDB map in use."),
#undef FAM
};

/* stage NULL: any stage (the skeleton's own counters), exposed with a
 * stage label; labels: fixed labels; dyn: the label for a prefix key's rest. */
struct mapping { const char *stage; enum mkind kind; const char *key; int fam; const char *labels; const char *dyn; };

static const struct mapping map[] = {
	{ NULL, MK_C, "frames_in", F_FRAMES_IN, NULL, NULL },
	{ NULL, MK_C, "frames_out", F_FRAMES_OUT, NULL, NULL },
	{ NULL, MK_C, "frames_unsent", F_FRAMES_UNSENT, NULL, NULL },
	{ NULL, MK_C, "bad_frames", F_BAD_FRAMES, NULL, NULL },
	{ NULL, MK_C, "socket_refused", F_SOCKET_REFUSED, NULL, NULL },
	{ NULL, MK_C, "key_conflicts", F_KEY_CONFLICTS, NULL, NULL },
	{ "fetchd", MK_C, "requests", F_FETCH_RECEIVED, NULL, NULL },
	{ "fetchd", MK_C, "ok", F_FETCH_REQUESTS, "result=\"ok\"", NULL },
	{ "fetchd", MK_C, "not_found", F_FETCH_REQUESTS, "result=\"not_found\"", NULL },
	{ "fetchd", MK_C, "no_candidates", F_FETCH_REQUESTS, "result=\"no_candidates\"", NULL },
	{ "fetchd", MK_C, "busy", F_FETCH_REQUESTS, "result=\"busy\"", NULL },
	{ "fetchd", MK_C, "cancelled", F_FETCH_REQUESTS, "result=\"cancelled\"", NULL },
	{ "fetchd", MK_C, "timeout", F_FETCH_REQUESTS, "result=\"timeout\"", NULL },
	{ "fetchd", MK_C, "bad_requests", F_FETCH_REQUESTS, "result=\"bad_request\"", NULL },
	{ "fetchd", MK_C, "coalesced", F_FETCH_COALESCED, NULL, NULL },
	{ "fetchd", MK_C, "revived", F_FETCH_REVIVED, NULL, NULL },
	{ "fetchd", MK_C, "queued", F_FETCH_QUEUED, NULL, NULL },
	{ "fetchd", MK_C, "upstream_requests", F_FETCH_UPSTREAM, NULL, NULL },
	{ "fetchd", MK_C, "bad_answers", F_FETCH_ATTEMPT_FAIL, NULL, NULL },
	{ "fetchd", MK_C, "replies_dropped", F_FETCH_REPLIES_DROPPED, NULL, NULL },
	{ "fetchd", MK_C, "busy_recoveries", F_FETCH_BUSY_RECOVERIES, NULL, NULL },
	{ "fetchd", MK_C, "bad_server_names", F_FETCH_BAD_NAMES, NULL, NULL },
	{ "fetchd", MK_C, "denied_addresses", F_FETCH_DENIED, NULL, NULL },
	{ "fetchd", MK_C, "servers_evicted", F_FETCH_EVICTED, NULL, NULL },
	{ "fetchd", MK_C, "health_pruned", F_FETCH_HEALTH_PRUNED, NULL, NULL },
	{ "fetchd", MK_C, "health_write_errors", F_FETCH_HEALTH_ERRORS, NULL, NULL },
	{ "fetchd", MK_C, "resolutions", F_RESOLVE_LOOKUPS, NULL, NULL },
	{ "fetchd", MK_C, "resolutions_cached", F_RESOLVE_CACHED, NULL, NULL },
	{ "fetchd", MK_C, "resolve_failed", F_RESOLVE_FAILED, NULL, NULL },
	{ "fetchd", MK_C, "resolution_write_errors", F_RESOLVE_WRITE_ERRORS, NULL, NULL },
	{ "fetchd", MK_G, "resolving", F_RESOLVE_PENDING, NULL, NULL },
	{ "fetchd", MK_G, "servers", F_FETCH_SERVERS, NULL, NULL },
	{ "fetchd", MK_G, "inflight", F_FETCH_INFLIGHT, NULL, NULL },
	{ "fetchd", MK_G, "queue", F_FETCH_QUEUE, NULL, NULL },
	{ "fetchd", MK_G, "callers", F_FETCH_CALLERS, NULL, NULL },
	{ "fetchd", MK_G, "inflight_peak", F_FETCH_INFLIGHT_PEAK, NULL, NULL },
	{ "fetchd", MK_H, "attempt_latency", F_FETCH_ATTEMPT_SECONDS, NULL, NULL },
	{ "fetchd", MK_H, "fetch_latency", F_FETCH_SECONDS, NULL, NULL },
	{ "validated", MK_C, "validated", F_VAL_VALIDATED, NULL, NULL },
	{ "validated", MK_C, "accepted", F_VAL_VERDICTS, "verdict=\"accepted\"", NULL },
	{ "validated", MK_C, "rejected", F_VAL_VERDICTS, "verdict=\"rejected\"", NULL },
	{ "validated", MK_C, "reject.", F_VAL_REJECTS, NULL, "reason" },
	{ "validated", MK_C, "redacted", F_VAL_REDACTED, NULL, NULL },
	{ "validated", MK_C, "known_stored", F_VAL_SKIPPED, "why=\"stored\"", NULL },
	{ "validated", MK_C, "known_recent", F_VAL_SKIPPED, "why=\"recent\"", NULL },
	{ "validated", MK_C, "key_fetches", F_VAL_KEY_FETCHES, NULL, NULL },
	{ "validated", MK_C, "waiting_for_keys", F_VAL_WAITS, NULL, NULL },
	{ "validated", MK_C, "keys_refused", F_VAL_KEYS_REFUSED, NULL, NULL },
	{ "validated", MK_C, "rescanned", F_VAL_RESCANNED, NULL, NULL },
	{ "validated", MK_X, "waiting_for_keys", F_VAL_WAITING, NULL, NULL },
	{ "validated", MK_X, "seen_hits", F_VAL_SEEN_HITS, NULL, NULL },
	{ "validated", MK_X, "store_lookups_skipped", F_VAL_LOOKUPS_SKIPPED, NULL, NULL },
	{ "validated", MK_X, "workers", F_VAL_WORKERS, NULL, NULL },
	{ "validated", MK_H, "validate_time", F_VAL_SECONDS, NULL, NULL },
	{ "purgatoryd", MK_C, "verdicts", F_PURG_VERDICTS, NULL, NULL },
	{ "purgatoryd", MK_C, "stored", F_EVENTS_STORED, NULL, NULL },
	{ "purgatoryd", MK_C, "held", F_PURG_HELD, NULL, NULL },
	{ "purgatoryd", MK_C, "released", F_PURG_RELEASED, NULL, NULL },
	{ "purgatoryd", MK_C, "rejected", F_PURG_REJECTED, NULL, NULL },
	{ "purgatoryd", MK_C, "duplicates", F_PURG_DUPS, NULL, NULL },
	{ "purgatoryd", MK_C, "expired", F_PURG_EXPIRED, NULL, NULL },
	{ "purgatoryd", MK_C, "batches", F_PURG_BATCHES, NULL, NULL },
	{ "purgatoryd", MK_C, "fetch_requests", F_PURG_FETCH_REQS, NULL, NULL },
	{ "purgatoryd", MK_C, "fetch_ok", F_PURG_FETCHES, "result=\"ok\"", NULL },
	{ "purgatoryd", MK_C, "fetch_failed", F_PURG_FETCHES, "result=\"failed\"", NULL },
	{ "purgatoryd", MK_C, "fetched_pdus", F_PURG_FETCHED, NULL, NULL },
	{ "purgatoryd", MK_C, "bad_verdicts", F_PURG_BAD_VERDICTS, NULL, NULL },
	{ "purgatoryd", MK_C, "acl_blocked", F_PURG_ACL_BLOCKED, NULL, NULL },
	{ "purgatoryd", MK_C, "rejects_pruned", F_PURG_REJECTS_PRUNED, NULL, NULL },
	{ "purgatoryd", MK_G, "held", F_PURG_HELD_NOW, NULL, NULL },
	{ "purgatoryd", MK_G, "held_rooms", F_PURG_HELD_ROOMS, NULL, NULL },
	{ "purgatoryd", MK_G, "fetch_inflight", F_PURG_FETCH_INFLIGHT, NULL, NULL },
	{ "purgatoryd", MK_G, "oldest_held_age_s", F_PURG_OLDEST_HELD, NULL, NULL },
	{ "purgatoryd", MK_X, "held_events", -1, NULL, NULL },   /* = gauge held */
	{ "purgatoryd", MK_X, "held_rooms", -1, NULL, NULL },    /* = gauge held_rooms */
	{ "purgatoryd", MK_H, "commit_latency", F_PURG_COMMIT_SECONDS, NULL, NULL },
	{ "purgatoryd", MK_H, "batch_size", F_PURG_BATCH_EVENTS, NULL, NULL },
	{ "feedpump", MK_C, "published", F_FEED_PUBLISHED, NULL, NULL },
	{ "feedpump", MK_C, "publish_failures", F_FEED_FAILURES, NULL, NULL },
	{ "feedpump", MK_C, "dead_lettered", F_FEED_DEAD, NULL, NULL },
	{ "feedpump", MK_C, "batches", F_FEED_BATCHES, NULL, NULL },
	{ "feedpump", MK_C, "wakeups", F_FEED_WAKEUPS, NULL, NULL },
	{ "feedpump", MK_G, "cursor", F_FEED_CURSOR, NULL, NULL },
	{ "feedpump", MK_G, "lease_held", F_FEED_LEASE, NULL, NULL },
	{ "feedpump", MK_H, "publish_latency", F_FEED_PUBLISH_SECONDS, NULL, NULL },
	{ "feedpump", MK_C, "fleet_applied", F_FEED_FLEET_APPLIED, NULL, NULL },
	{ "feedpump", MK_G, "fleet_apply_cursor", F_FEED_FLEET_CURSOR, NULL, NULL },
	{ "feedpump", MK_C, "fleet_purgatory_wakes", F_FEED_FLEET_WAKES, NULL, NULL },
	{ "syncd", MK_C, "pulls", F_SYNC_PULLS, NULL, NULL },
	{ "syncd", MK_C, "events_pulled", F_SYNC_EVENTS, NULL, NULL },
	{ "syncd", MK_C, "pulls_skipped", F_SYNC_SKIPPED, NULL, NULL },
	{ "syncd", MK_C, "failures", F_SYNC_FAILURES, NULL, NULL },
	{ "syncd", MK_C, "longpolls", F_SYNC_LONGPOLLS, NULL, NULL },
	{ "syncd", MK_C, "inbox_resent", F_SYNC_RESENT, NULL, NULL },
	{ "syncd", MK_C, "bytes_pulled", F_SYNC_BYTES, NULL, NULL },
	{ "syncd", MK_C, "identity_refused", F_SYNC_IDENTITY_REFUSED, NULL, NULL },
	{ "syncd", MK_C, "store_full", F_SYNC_STORE_FULL, NULL, NULL },
	{ "syncd", MK_C, "store_full_waits", F_SYNC_STORE_FULL_WAITS, NULL, NULL },
	{ "syncd", MK_G, "peers_syncing", F_SYNC_ACTIVE, NULL, NULL },
	{ "syncd", MK_C, "fleet_not_holder", F_SYNC_FLEET_NOT_HOLDER, NULL, NULL },
	{ "syncd", MK_C, "peer_forbidden", F_SYNC_PEER_FORBIDDEN, NULL, NULL },
	{ "fleetd", MK_G, "leases_held", F_FLEET_HELD, NULL, NULL },
	{ "fleetd", MK_G, "members", F_FLEET_MEMBERS, NULL, NULL },
	{ "fleetd", MK_G, "peers", F_FLEET_PEERS, NULL, NULL },
	{ "fleetd", MK_C, "lease_takes", F_FLEET_TAKES, NULL, NULL },
	{ "fleetd", MK_C, "lease_renewals", F_FLEET_RENEWALS, NULL, NULL },
	{ "fleetd", MK_C, "lease_losses", F_FLEET_LOSSES, NULL, NULL },
	{ "fleetd", MK_C, "lease_releases", F_FLEET_RELEASES, NULL, NULL },
	{ "fleetd", MK_C, "cas_lost", F_FLEET_CAS_LOST, NULL, NULL },
	{ "fleetd", MK_C, "nats_errors", F_FLEET_NATS_ERRORS, NULL, NULL },
	{ "fleetd", MK_C, "cursor_puts", F_FLEET_CURSOR_PUTS, NULL, NULL },
	{ "fleetd", MK_C, "state_copied", F_FLEET_COPIED, NULL, NULL },
	{ "fleetd", MK_C, "kv_refused", F_FLEET_KV_REFUSED, NULL, NULL },
	{ "syncd", MK_G, "lag_events.", F_SYNC_LAG_EVENTS, NULL, "peer" },
	{ "syncd", MK_G, "lag_s.", F_SYNC_LAG_SECONDS, NULL, "peer" },
	{ "syncd", MK_X, "peers", -1, NULL, NULL },   /* expanded by sample_peers */
	{ "served", MK_C, "http_requests", F_HTTP_REQUESTS, NULL, NULL },
	{ "served", MK_C, "http_errors", F_HTTP_ERRORS, NULL, NULL },
	{ "served", MK_C, "http_unauthorized", F_HTTP_UNAUTHORIZED, NULL, NULL },
	{ "served", MK_C, "unauthorized_before_body", F_HTTP_UNAUTH_EARLY, NULL, NULL },
	{ "served", MK_C, "proxied_requests", F_HTTP_PROXIED, NULL, NULL },
	{ "served", MK_C, "event_hits", F_EVENT_LOOKUPS, "result=\"hit\"", NULL },
	{ "served", MK_C, "event_misses", F_EVENT_LOOKUPS, "result=\"miss\"", NULL },
	{ "served", MK_C, "recover_queued", F_RECOVER, "what=\"queued\"", NULL },
	{ "served", MK_C, "recover_dropped", F_RECOVER, "what=\"dropped\"", NULL },
	{ "served", MK_C, "recover_dedup_local", F_RECOVER, "what=\"dedup_local\"", NULL },
	{ "served", MK_C, "recover_dedup_claim", F_RECOVER, "what=\"dedup_claim\"", NULL },
	{ "served", MK_C, "recover_claim_errors", F_RECOVER, "what=\"claim_error\"", NULL },
	{ "served", MK_C, "recover_sent", F_RECOVER, "what=\"sent\"", NULL },
	{ "served", MK_C, "recover_ok", F_RECOVER, "what=\"ok\"", NULL },
	{ "served", MK_C, "recover_failed", F_RECOVER, "what=\"failed\"", NULL },
	{ "served", MK_C, "recover_pdus", F_RECOVER_PDUS, NULL, NULL },
	{ "served", MK_C, "recover_expired", F_RECOVER, "what=\"expired\"", NULL },
	{ "served", MK_C, "recover_refused_id", F_RECOVER, "what=\"refused_id\"", NULL },
	{ "served", MK_C, "recover_client_capped", F_RECOVER, "what=\"client_capped\"", NULL },
	{ "served", MK_C, "longpolls", F_LONGPOLLS, NULL, NULL },
	{ "served", MK_C, "events_served", F_EVENTS_SERVED, NULL, NULL },
	{ "served", MK_C, "conn_refused", F_CONN_REFUSED, "limit=\"total\"", NULL },
	{ "served", MK_C, "conn_refused_per_ip", F_CONN_REFUSED, "limit=\"per_ip\"", NULL },
	{ "served", MK_C, "accept_errors", F_ACCEPT_ERRORS, NULL, NULL },
	{ "served", MK_C, "header_timeouts", F_HTTP_TIMEOUTS, "phase=\"header\"", NULL },
	{ "served", MK_C, "body_timeouts", F_HTTP_TIMEOUTS, "phase=\"body\"", NULL },
	{ "served", MK_C, "claims_swept", F_CLAIMS_SWEPT, NULL, NULL },
	{ "served", MK_C, "xmatrix_ok", F_XMATRIX, "result=\"ok\"", NULL },
	{ "served", MK_C, "xmatrix_refused", F_XMATRIX, "result=\"refused\"", NULL },
	{ "served", MK_C, "xmatrix_key_fetches", F_XMATRIX_KEY_FETCHES, NULL, NULL },
	{ "served", MK_C, "acl_forbidden", F_ACL_FORBIDDEN, NULL, NULL },
	{ "served", MK_C, "mode_forbidden", F_HTTP_NOT_PUBLISHING, NULL, NULL },
	{ "served", MK_G, "http_connections", F_HTTP_CONNS, NULL, NULL },
	{ "served", MK_G, "longpoll_waiters", F_LONGPOLL_WAITERS, NULL, NULL },
	{ "served", MK_G, "recover_queue", F_RECOVER_QUEUE, NULL, NULL },
	{ "served", MK_G, "recover_inflight", F_RECOVER_INFLIGHT, NULL, NULL },
	{ "served", MK_G, "xmatrix_key_waiters", F_XMATRIX_KEY_WAITERS, NULL, NULL },
};

/* One scrape's output, family by family (a family's samples must be
 * contiguous, under one HELP and TYPE). */
struct expo { struct buf f[F__COUNT]; };

static void label_value(struct buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\') buf_adds(b, "\\\\");
		else if (*v == '"') buf_adds(b, "\\\"");
		else if (*v == '\n') buf_adds(b, "\\n");
		else buf_addc(b, *v);
	}
}

/* name{labels}: stage (when given), fixed labels, one dynamic label. */
static void sample_head(struct buf *b, const char *name, const char *suffix, const char *stage,
                        const char *fixed, const char *dyn, const char *dynval, const char *extra)
{
	buf_printf(b, "%s%s", name, suffix ? suffix : "");
	int n = 0;
	buf_addc(b, '{');
	if (stage) { buf_printf(b, "stage=\"%s\"", stage); n++; }
	if (fixed && *fixed) { buf_printf(b, "%s%s", n++ ? "," : "", fixed); }
	if (dyn) { buf_printf(b, "%s%s=\"", n++ ? "," : "", dyn); label_value(b, dynval); buf_addc(b, '"'); }
	if (extra) { buf_printf(b, "%s%s", n++ ? "," : "", extra); }
	if (n) buf_adds(b, "} ");
	else { b->len--; buf_addc(b, ' '); }
}

static void put_value(struct expo *e, int f, const char *stage, const char *fixed,
                      const char *dyn, const char *dynval, long long v)
{
	sample_head(&e->f[f], fam[f].name, NULL, stage, fixed, dyn, dynval, NULL);
	buf_printf(&e->f[f], "%lld\n", v);
}

static void put_scaled(struct buf *b, uint64_t v, int us)
{
	if (us) buf_printf(b, "%llu.%06llu", (unsigned long long)(v / 1000000u), (unsigned long long)(v % 1000000u));
	else buf_printf(b, "%llu", (unsigned long long)v);
}

/* {"unit":"us","sum":S,"b":[...]} -> _bucket{le}, _sum, _count. */
static void put_histo(struct expo *e, int f, const char *stage, const char *fixed,
                      const char *dyn, const char *dynval, const struct json_doc *d, int o)
{
	int u = json_obj_get(d, o, "unit"), s = json_obj_get(d, o, "sum"), a = json_obj_get(d, o, "b");
	if (s < 0 || a < 0 || d->tok[s].type != JSON_INT || d->tok[a].type != JSON_ARRAY) return;
	int us = u >= 0 && json_str_eq(d, u, "us");
	uint64_t c[HISTO_BUCKETS] = {0}, total = 0;
	int i = 0;
	for (int t = json_first(d, a); t >= 0 && i < HISTO_BUCKETS; t = json_next_elem(d, a, t), i++)
		if (d->tok[t].type == JSON_INT && d->tok[t].ival > 0) c[i] = (uint64_t)d->tok[t].ival;
	struct buf *b = &e->f[f];
	char le[48];
	for (i = 0; i < HISTO_BUCKETS; i++) {
		total += c[i];
		if (i == HISTO_BUCKETS - 1) snprintf(le, sizeof le, "le=\"+Inf\"");
		else if (us) snprintf(le, sizeof le, "le=\"%llu.%06llu\"", (unsigned long long)(histo_le(i) / 1000000u),
		                      (unsigned long long)(histo_le(i) % 1000000u));
		else snprintf(le, sizeof le, "le=\"%llu\"", (unsigned long long)histo_le(i));
		sample_head(b, fam[f].name, "_bucket", stage, fixed, dyn, dynval, le);
		buf_printf(b, "%llu\n", (unsigned long long)total);
	}
	sample_head(b, fam[f].name, "_sum", stage, fixed, dyn, dynval, NULL);
	put_scaled(b, (uint64_t)d->tok[s].ival, us);
	buf_addc(b, '\n');
	sample_head(b, fam[f].name, "_count", stage, fixed, dyn, dynval, NULL);
	buf_printf(b, "%llu\n", (unsigned long long)total);
}

/* The table entry for (stage, kind, key): exact keys first, then prefixes. */
static const struct mapping *lookup(const char *stage, enum mkind kind, const char *key, const char **rest)
{
	const struct mapping *pre = NULL;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		const struct mapping *m = &map[i];
		if (m->kind != kind || (m->stage && strcmp(m->stage, stage) != 0)) continue;
		size_t kl = strlen(m->key);
		if (kl && m->key[kl - 1] == '.') {
			if (!pre && strncmp(key, m->key, kl) == 0 && key[kl]) { pre = m; *rest = key + kl; }
		} else if (strcmp(m->key, key) == 0) {
			*rest = NULL;
			return m;
		}
	}
	return pre;
}

static void sample_peers(struct expo *e, const struct json_doc *d, int o)
{
	for (int k = json_first(d, o); k >= 0; k = json_next_kv(d, o, k)) {
		char peer[128], phase[32];
		int p = k + 1;
		if (d->tok[p].type != JSON_OBJECT || json_str_copy(d, k, peer, sizeof peer) <= 0) continue;
		int pulled = json_obj_get(d, p, "pulled"), fails = json_obj_get(d, p, "failures"),
		    ph = json_obj_get(d, p, "phase");
		if (pulled >= 0 && d->tok[pulled].type == JSON_INT)
			put_value(e, F_SYNC_PEER_EVENTS, NULL, NULL, "peer", peer, (long long)d->tok[pulled].ival);
		if (fails >= 0 && d->tok[fails].type == JSON_INT)
			put_value(e, F_SYNC_PEER_FAILS, NULL, NULL, "peer", peer, (long long)d->tok[fails].ival);
		if (ph >= 0 && d->tok[ph].type == JSON_STRING && json_str_copy(d, ph, phase, sizeof phase) > 0) {
			struct buf *b = &e->f[F_SYNC_PEER_PHASE];
			sample_head(b, fam[F_SYNC_PEER_PHASE].name, NULL, NULL, NULL, "peer", peer, NULL);
			b->len -= 2;     /* reopen the label set for the phase */
			buf_adds(b, ",phase=\"");
			label_value(b, phase);
			buf_adds(b, "\"} 1\n");
		}
	}
}

static void sample_stage(struct expo *e, const char *stage, const char *json, size_t n)
{
	struct json_doc d = {0};
	if (json_parse(&d, json, n, 8) < 0 || d.tok[0].type != JSON_OBJECT) {
		put_value(e, F_STAGE_UP, stage, NULL, NULL, NULL, 0);
		json_doc_free(&d);
		return;
	}
	put_value(e, F_STAGE_UP, stage, NULL, NULL, NULL, 1);
	int up = json_obj_get(&d, 0, "uptime_s");
	if (up >= 0 && d.tok[up].type == JSON_INT)
		put_value(e, F_STAGE_UPTIME, stage, NULL, NULL, NULL, (long long)d.tok[up].ival);
	static const char *const kinds[] = { "counters", "gauges", "histograms" };
	static const enum mkind mk[] = { MK_C, MK_G, MK_H };
	for (int k = 0; k < 3; k++) {
		int o = json_obj_get(&d, 0, kinds[k]);
		if (o < 0 || d.tok[o].type != JSON_OBJECT) continue;
		for (int m = json_first(&d, o); m >= 0; m = json_next_kv(&d, o, m)) {
			char name[96];
			const char *rest = NULL;
			if (json_str_copy(&d, m, name, sizeof name) <= 0) continue;
			const struct mapping *mp = lookup(stage, mk[k], name, &rest);
			if (mk[k] == MK_H) {
				if (d.tok[m + 1].type != JSON_OBJECT) continue;
				if (mp && mp->fam >= 0)
					put_histo(e, mp->fam, mp->stage ? NULL : stage, mp->labels, rest ? mp->dyn : NULL, rest,
					          &d, m + 1);
				else if (!mp)
					put_histo(e, F_STAGE_HISTO, stage, NULL, "name", name, &d, m + 1);
				continue;
			}
			if (d.tok[m + 1].type != JSON_INT) continue;
			long long v = (long long)d.tok[m + 1].ival;
			if (!mp)
				put_value(e, k ? F_STAGE_GAUGE : F_STAGE_COUNTER, stage, NULL, "name", name, v);
			else if (mp->fam >= 0)
				put_value(e, mp->fam, mp->stage ? NULL : stage, mp->labels, rest ? mp->dyn : NULL, rest, v);
		}
	}
	/* the stage's own top-level members (ops->stats) */
	for (int m = json_first(&d, 0); m >= 0; m = json_next_kv(&d, 0, m)) {
		char name[96];
		const char *rest = NULL;
		if (json_str_copy(&d, m, name, sizeof name) <= 0) continue;
		static const char *const skel[] = { "stage", "pid", "uptime_s", "counters", "gauges", "histograms" };
		int is_skel = 0;
		for (size_t i = 0; i < sizeof skel / sizeof skel[0]; i++) is_skel |= !strcmp(name, skel[i]);
		if (is_skel) continue;
		if (!strcmp(stage, "syncd") && !strcmp(name, "peers") && d.tok[m + 1].type == JSON_OBJECT) {
			sample_peers(e, &d, m + 1);
			continue;
		}
		const struct mapping *mp = lookup(stage, MK_X, name, &rest);
		if (d.tok[m + 1].type != JSON_INT) continue;
		if (!mp)
			put_value(e, F_STAGE_GAUGE, stage, NULL, "name", name, (long long)d.tok[m + 1].ival);
		else if (mp->fam >= 0)
			put_value(e, mp->fam, mp->stage ? NULL : stage, mp->labels, NULL, NULL, (long long)d.tok[m + 1].ival);
	}
	json_doc_free(&d);
}

static void scrape_finish(struct scrape *sc)
{
	struct served *s = sc->s;
	struct expo *e = xcalloc(1, sizeof *e);
	struct buf out, self;
	buf_init(&out);
	buf_init(&self);
	for (int f = 0; f < F__COUNT; f++) buf_init(&e->f[f]);
	daemon_stats_json(s->d, &self);
	sample_stage(e, "served", self.data, self.len);
	for (size_t i = 0; i < NSTAGES; i++) {
		if (sc->reply[i]) sample_stage(e, sc->stage[i], sc->reply[i], strlen(sc->reply[i]));
		else put_value(e, F_STAGE_UP, sc->stage[i], NULL, NULL, NULL, 0);
	}
	MDB_txn *t = store_begin(s->d->st, 1);
	for (int i = 0; i < DB__COUNT; i++) {
		size_t n;
		if (store_entries(t, s->d->st, i, &n) == 0)
			put_value(e, F_LMDB_ENTRIES, NULL, NULL, "db", store_db_names[i], (long long)n);
	}
	/* the outbox backlog, read here so it is fresh even while feedpump is idle:
	 * stream positions from the feed cursor to the stream's head */
	uint64_t head = store_stream_head(t, s->d->st), cur = outbox_cursor_get(t, s->d->st);
	put_value(e, F_FEED_BACKLOG, NULL, NULL, NULL, NULL, head && head >= cur ? (long long)(head - cur + 1) : 0);
	MDB_envinfo ei;
	MDB_stat es;
	if (mdb_env_info(s->d->st->env, &ei) == 0 && mdb_env_stat(s->d->st->env, &es) == 0)
		put_value(e, F_LMDB_USED, NULL, NULL, NULL, NULL, (long long)(ei.me_last_pgno + 1) * es.ms_psize);
	mdb_txn_abort(t);
	static const char *const tname[] = { "counter", "gauge", "histogram" };
	for (int f = 0; f < F__COUNT; f++) {
		if (!e->f[f].len) continue;
		buf_printf(&out, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name, tname[fam[f].type]);
		buf_add(&out, e->f[f].data, e->f[f].len);
		buf_free(&e->f[f]);
	}
	free(e);
	struct evkeyvalq *h = evhttp_request_get_output_headers(sc->req);
	struct evbuffer *eb = evbuffer_new();
	if (eb && evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4") == 0
	    && evbuffer_add(eb, out.data, out.len) == 0) {
		evhttp_send_reply(sc->req, 200, "OK", eb);
	} else {
		log_warnx("/metrics: no memory for the answer");
		evhttp_send_error(sc->req, 500, NULL);
	}
	if (eb)
		evbuffer_free(eb);
	buf_free(&out);
	buf_free(&self);
	for (size_t i = 0; i < NSTAGES; i++) {
		if (sc->bev[i]) bufferevent_free(sc->bev[i]);
		free(sc->reply[i]);
	}
	if (sc->timeout)
		event_free(sc->timeout);
	free(sc);
}

static void stage_done(struct scrape *sc, size_t i)
{
	if (i < NSTAGES && sc->bev[i]) { bufferevent_free(sc->bev[i]); sc->bev[i] = NULL; }
	if (--sc->pending == 0) scrape_finish(sc);
}

static size_t index_of(struct scrape *sc, struct bufferevent *bev)
{
	for (size_t i = 0; i < NSTAGES; i++) if (sc->bev[i] == bev) return i;
	return NSTAGES;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct scrape *sc = arg;
	size_t i = index_of(sc, bev);
	if (i == NSTAGES) return;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		if (evbuffer_get_length(in) < FRAME_HDR_LEN) return;
		unsigned char h[FRAME_HDR_LEN];
		evbuffer_copyout(in, h, sizeof h);
		struct frame f;
		const char *why;
		if (frame_hdr_decode(h, 1u << 20, &f, &why) < 0) { stage_done(sc, i); return; }
		if (evbuffer_get_length(in) < FRAME_HDR_LEN + (size_t)f.len) return;
		evbuffer_drain(in, FRAME_HDR_LEN);
		char *p = xmalloc((size_t)f.len + 1);
		if (evbuffer_remove(in, p, f.len) != (int)f.len) { free(p); stage_done(sc, i); return; }
		p[f.len] = 0;
		if (f.type == FT_STATS) { sc->reply[i] = p; stage_done(sc, i); return; }
		free(p);
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct scrape *sc = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		size_t i = index_of(sc, bev);
		if (i < NSTAGES) stage_done(sc, i);
	}
}

static void timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct scrape *sc = arg;
	(void)fd; (void)ev;
	sc->pending = 1;     /* finish now with what arrived */
	for (size_t i = 0; i < NSTAGES; i++) if (sc->bev[i]) { bufferevent_free(sc->bev[i]); sc->bev[i] = NULL; }
	stage_done(sc, NSTAGES);
}

void metrics_handle(struct served *s, struct evhttp_request *req)
{
	struct scrape *sc = xcalloc(1, sizeof *sc);
	sc->s = s;
	sc->req = req;
	sc->pending = 1;     /* our own hold, released below */
	scrape_stages(sc, s->d->ops->name);
	/* the timer first: without it a silent stage would hold the answer */
	sc->timeout = evtimer_new(s->d->base, timeout_cb, sc);
	if (!sc->timeout) {
		log_warnx("/metrics: cannot make a timer (event_new failed)");
		served_error(s, req, 500, "M_UNKNOWN", "out of resources");
		free(sc);
		return;
	}
	const char *run_dir = cfg_str(&s->d->cfg, "node", "run_dir");
	for (size_t i = 0; i < NSTAGES; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		frame_stage_path(sa.sun_path, sizeof sa.sun_path, run_dir, sc->stage[i]);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) continue;
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS && errno != EAGAIN) {
			close(fd);
			continue;
		}
		struct bufferevent *bev = bufferevent_socket_new(s->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (!bev) { close(fd); continue; }
		unsigned char h[FRAME_HDR_LEN];
		frame_hdr_encode(h, 0, FT_STATS_REQ, 0, 1);
		bufferevent_setcb(bev, read_cb, NULL, event_cb, sc);
		if (bufferevent_write(bev, h, sizeof h) < 0 || bufferevent_enable(bev, EV_READ) < 0) {
			bufferevent_free(bev);     /* shows as down */
			continue;
		}
		sc->bev[i] = bev;
		sc->pending++;
	}
	struct timeval tv = { s->stats_timeout / 1000, (s->stats_timeout % 1000) * 1000 };
	if (evtimer_add(sc->timeout, &tv) < 0) {
		/* no deadline: answer with what is there now */
		log_warnx("/metrics: cannot arm the stats timer; answering without waiting");
		timeout_cb(-1, 0, sc);
		return;
	}
	stage_done(sc, NSTAGES);
}

void healthz_handle(struct served *s, struct evhttp_request *req)
{
	MDB_txn *t = store_begin(s->d->st, 1);
	size_t e;
	int ok = store_entries(t, s->d->st, DB_EVENTS, &e) == 0;
	mdb_txn_abort(t);
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "{\"node_id\":\"%s\",\"ok\":%s,\"server_name\":", s->node_id, ok ? "true" : "false");
	json_put_string(&b, s->server_name, strlen(s->server_name));
	buf_addc(&b, '}');
	served_json(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", &b);
	buf_free(&b);
}
