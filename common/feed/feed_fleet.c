/* feed_fleet.c: the fleet's feed names (see feed_fleet.h). */
#include <stdio.h>
#include "feed/feed_fleet.h"

int feed_fleet_on(const struct config *cfg)
{
	const char *u = cfg_str(cfg, "fleet", "nats_url");
	return u && *u;
}

const char *feed_fleet_member(const struct config *cfg, const char *node_id)
{
	const char *m = cfg_str(cfg, "fleet", "member");
	return m && *m ? m : node_id;
}

void feed_opts_fleet(struct feed_opts *o, const struct config *cfg, const char *node_id)
{
	feed_opts_from_config(o, cfg);
	const char *name = cfg_str(cfg, "fleet", "name");
	o->nats_url = cfg_str(cfg, "fleet", "nats_url");
	o->nats_stream = name;
	snprintf(o->subject_buf, sizeof o->subject_buf, "%s.events", name);
	o->nats_subject = o->subject_buf;
	o->nats_replicas = (int)cfg_int(cfg, "fleet", "replicas");
	nats_sec_from_config(&o->nats_sec, cfg, "fleet");
	snprintf(o->durable_buf, sizeof o->durable_buf, "%s-apply-%s", name,
	         feed_fleet_member(cfg, node_id ? node_id : "node"));
	o->nats_durable = o->durable_buf;
}
