/* params_fleet.c: parameters of a fleet ([fleet]): nodes sharing one server
 * name and signing key, coordinated through NATS JetStream (KV leases for
 * peers, one fleet feed, claims). Empty nats_url: no fleet (the default). */
#include <stddef.h>
#include "core/config.h"

const struct param params_fleet[] = {
	P_STR("fleet", "nats_url", "", "NATS server URL(s), comma-separated, of the fleet's cluster (empty: no fleet)"),
	P_STR("fleet", "name", "fedpipe", "fleet name: the KV buckets and the fleet stream are named after it"),
	P_STR("fleet", "member", "", "this node's name in the fleet (empty: its node ID)"),
	P_DUR("fleet", "lease_ttl", "10s", "1s", "1h", "a peer lease's lifetime in the KV bucket (renewed every ttl/3)"),
	P_INT("fleet", "replicas", "1", "1", "5", "replicas of the fleet's KV buckets and stream (3 on a 3-server cluster)"),
	P_BOOL("fleet", "apply", "true", "apply the fleet feed into this node's store (every node serves every event)"),
	P_DUR("fleet", "claims_ttl", "30s", "1s", "1h", "lifetime of a recovery claim in the fleet's claims bucket"),
	P_END
};
