/* params_node.c: parameters every stage shares ([node], [acl], [feed]). */
#include <stddef.h>
#include "config.h"

const struct param params_node[] = {
	{ "node", "server_name",  "localhost:8448", "server name this node signs as" },
	{ "node", "state_dir",    "/var/lib/fedpipe", "directory of the LMDB environment" },
	{ "node", "run_dir",      "/run/fedpipe", "Unix sockets: <run_dir>/<stage>.sock" },
	{ "node", "signing_key",  "/etc/fedpipe/signing.key", "Synapse-format ed25519 signing key file" },
	{ "node", "listen",       "127.0.0.1:8448", "address served listens on" },
	{ "node", "shared_key",   "", "bearer key peers must present (empty: open)" },
	{ "node", "room_version", "10", "room version when a room's create event is unknown (10|11)" },
	{ "node", "map_size",     "8G", "LMDB map size (address space reserved)" },
	{ "node", "map_size_max", "64G", "ceiling the LMDB map grows to (doubling) when it fills; at the ceiling writers degrade" },
	{ "node", "frame_max",    "4M", "largest frame a stage accepts" },
	{ "node", "reconnect",    "1s", "wait between reconnects to another stage's socket" },
	{ "node", "socket_group", "", "group (besides our own uid) whose processes may connect to the stage sockets" },
	{ "acl",  "deny",         "", "server names whose events are not released" },
	{ "acl",  "allow",        "", "if set, only these server names are released" },
	{ "feed", "sink",         "nop", "feed sink: nop | file | stdout | nats" },
	{ "feed", "dir",          "", "file sink directory" },
	{ "feed", "nats_url",     "", "NATS server URL (nats sink and source)" },
	{ NULL, NULL, NULL, NULL }
};
