/* stages.c: the stage table (see stages.h). Start order: validated and
 * purgatoryd first (they take in what the others bring; a frame sent to a
 * stage not yet up is not lost, LMDB is the queue and is rescanned), syncd
 * last so a node pulls from its peers only once the rest is up; fleetd
 * (peer leases, idle outside a fleet) just before it, so syncd finds the
 * lease rows fleetd keeps. */
#include <string.h>
#include "core/stages.h"

const struct stage stage_table[STAGE_COUNT] = {
	/* name          socket             unit                          flow emits                       queue gauges */
	{ "validated",  "validated.sock",  "fedpipe-validated.service",  1, "purgatoryd fetchd",          "waiting_for_keys,pending" },
	{ "purgatoryd", "purgatoryd.sock", "fedpipe-purgatoryd.service", 2, "fetchd validated feedpump", "held" },
	{ "fetchd",     "fetchd.sock",     "fedpipe-fetchd.service",     3, "",                           "inflight,queue" },
	{ "feedpump",   "feedpump.sock",   "fedpipe-feedpump.service",   4, "",                           "pending" },
	{ "served",     "served.sock",     "fedpipe-served.service",     5, "validated fetchd",           "queue" },
	{ "fleetd",     "fleetd.sock",     "fedpipe-fleetd.service",     6, "",                           "" },
	{ "syncd",      "syncd.sock",      "fedpipe-syncd.service",      0, "validated",                  "peers_syncing" },
};

const struct stage *stage_by_name(const char *name)
{
	for (size_t i = 0; i < STAGE_COUNT; i++)
		if (strcmp(stage_table[i].name, name) == 0)
			return &stage_table[i];
	return NULL;
}

const struct stage *stage_in_flow(size_t i)
{
	for (size_t k = 0; k < STAGE_COUNT; k++)
		if (stage_table[k].flow == (int)i)
			return &stage_table[k];
	return NULL;
}
