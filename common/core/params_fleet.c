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
	P_STR("fleet", "nats_user", "", "NATS user name (with nats_password_file; empty: no user/password)"),
	P_PATH("fleet", "nats_password_file", "", "file whose first line is the NATS password (refused if others can read it)"),
	P_PATH("fleet", "nats_ca_file", "", "PEM CA the NATS servers' certificates must lead to: turns TLS on"),
	P_STR("fleet", "nats_tls_name", "", "name every NATS server's certificate must carry (empty: the first URL's host)"),
	P_PATH("fleet", "nats_cert_file", "", "PEM client certificate for NATS mutual TLS (with nats_key_file and nats_ca_file)"),
	P_PATH("fleet", "nats_key_file", "", "PEM private key of nats_cert_file"),
	P_PATH("fleet", "secret_file", "", "shared secret (16 B to 4 KiB, mode 0600) the fleet's MACs are keyed from (empty: derived from [node] signing_key)"),
	P_END
};
