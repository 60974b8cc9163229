/* feed_fleet.h: a fleet's names on its NATS ([fleet] section): the fleet
 * stream `<name>` on subject `<name>.events` (replicas [fleet] replicas,
 * duplicate window [feed] nats_dup_window), each node's durable apply
 * consumer `<name>-apply-<member>`. No fleet unless [fleet] nats_url is set. */
#ifndef FP_FEED_FLEET_H
#define FP_FEED_FLEET_H
#include "core/config.h"
#include "feed/feed_sink.h"

/* 1 if [fleet] nats_url is set. */
int  feed_fleet_on(const struct config *cfg);
/* o := the [feed] options, then the fleet's: URL, stream, subject,
 * replicas, durable `<name>-apply-<member>` (member: [fleet] member, else
 * node_id). The names live in o itself. */
void feed_opts_fleet(struct feed_opts *o, const struct config *cfg, const char *node_id);
/* This node's member name: [fleet] member, else node_id. */
const char *feed_fleet_member(const struct config *cfg, const char *node_id);

#endif
