/* params_node.c: parameters every stage shares ([node], [acl], [feed]). */
#include <stddef.h>
#include "core/config.h"

const struct param params_node[] = {
	P_NAME("node", "server_name", "localhost:8448", "server name this node signs as"),
	P_PATH("node", "state_dir", "/var/lib/fedpipe", "directory of the LMDB environment"),
	P_PATH("node", "run_dir", "/run/fedpipe", "Unix sockets: <run_dir>/<stage>.sock"),
	P_PATH("node", "signing_key", "/etc/fedpipe/signing.key", "Synapse-format ed25519 signing key file"),
	P_NAMES("node", "trusted_key_servers", "", "notaries asked for other servers' keys (POST /_matrix/key/v2/query); each answer must be signed by the server and by the notary with a key the notary served itself; empty: keys only from their own servers"),
	P_STR("node", "listen", "127.0.0.1:8448", "address served listens on"),
	P_PATH("node", "tls_cert", "", "PEM certificate chain served speaks HTTPS with (empty: plain HTTP; with tls_key; reread on SIGHUP)"),
	P_PATH("node", "tls_key", "", "PEM private key of tls_cert"),
	P_PATH("node", "ca_file", "", "PEM CA bundle trusted in addition to the system's (/etc/ssl/certs) for every outgoing TLS connection (private federations, tests); empty: the system's only; fetchd: a SIGHUP with a changed value makes a new resolver; syncd reads it per request"),
	P_STR("node", "resolver", "", "DNS server (HOST:PORT, IPv6 as [ADDR]:PORT) asked for server name resolution (SRV, A/AAAA; c-ares); empty: the system's (/etc/resolv.conf); fetchd: a SIGHUP with a changed value makes a new resolver"),
	P_STR("node", "shared_key", "", "bearer key peers must present (empty: open)"),
	P_ENUM("node", "mode", "sync", "sync|publish|subscribe", "federation-level mode: sync (pull from peers, serve to them) | publish (serve only: syncd pulls from no peer, --once refused) | subscribe (pull only: served answers /_fed/v1/events and the Matrix event reads 403 M_FORBIDDEN, no cache-warm recovery); applied at start and on SIGHUP (syncd, served)"),
	P_ENUM("node", "room_version", "10", "10|11", "room version when a room's create event is unknown (10|11)"),
	P_SIZE("node", "map_size", "8G", "32K", "64T", "LMDB map size (address space reserved)"),
	P_SIZE("node", "map_size_max", "64G", "32K", "64T", "ceiling the LMDB map grows to (doubling) when it fills; at the ceiling writers degrade"),
	P_SIZE("node", "frame_max", "4M", "64K", "1G", "largest frame a stage accepts"),
	P_DUR("node", "reconnect", "1s", "10ms", "1h", "wait between reconnects to another stage's socket"),
	P_STR("node", "socket_group", "", "group (besides our own uid) whose processes may connect to the stage sockets"),
	P_NAMES("acl", "deny", "", "server names whose events are not released"),
	P_NAMES("acl", "allow", "", "if set, only these server names are released"),
	P_ENUM("feed", "sink", "nop", "nop|file|stdout|nats", "feed sink: nop | file | stdout | nats"),
	P_PATH("feed", "dir", "", "file sink directory"),
	P_STR("feed", "nats_url", "", "NATS server URL (nats sink and source)"),
	P_END
};
