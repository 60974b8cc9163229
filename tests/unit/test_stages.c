/* test_stages.c: core/stages.h, the one stage table. Every stage once, a
 * flow order that is a permutation, lookups by name and by flow, each
 * socket the name frame_stage_path gives the stage, each unit named after
 * it, and every stage a stage emits to is in the table. */
#include <string.h>
#include "core/frame.h"
#include "core/stages.h"
#include "../lib/tap.h"

int main(void)
{
	int names_ok = 1, flow_seen[STAGE_COUNT] = { 0 }, flow_ok = 1, sock_ok = 1, unit_ok = 1;
	int emits_ok = 1, by_name_ok = 1;
	for (size_t i = 0; i < STAGE_COUNT; i++) {
		const struct stage *sg = &stage_table[i];
		for (size_t j = 0; j < i; j++)
			if (!strcmp(stage_table[j].name, sg->name)) names_ok = 0;
		if (sg->flow < 0 || sg->flow >= STAGE_COUNT || flow_seen[sg->flow]++) flow_ok = 0;
		char path[256], want[256];
		frame_stage_path(path, sizeof path, "/run/x", sg->name);
		snprintf(want, sizeof want, "/run/x/%s", sg->sock);
		if (strcmp(path, want)) sock_ok = 0;
		snprintf(want, sizeof want, "fedpipe-%s.service", sg->name);
		if (strcmp(sg->unit, want)) unit_ok = 0;
		char em[128];
		snprintf(em, sizeof em, "%s", sg->emits);
		for (char *t = strtok(em, " "); t; t = strtok(NULL, " "))
			if (!stage_by_name(t) || !strcmp(t, sg->name)) emits_ok = 0;
		if (stage_by_name(sg->name) != sg) by_name_ok = 0;
	}
	TAP_OK(names_ok, "each stage name appears once");
	TAP_OK(flow_ok, "flow order: each place 0..%d taken once", STAGE_COUNT - 1);
	TAP_OK(sock_ok, "each stage's socket is the path frame_stage_path gives it");
	TAP_OK(unit_ok, "each stage's unit is fedpipe-<name>.service");
	TAP_OK(emits_ok, "a stage emits only to other stages of the table");
	TAP_OK(by_name_ok && !stage_by_name("fedsup") && !stage_by_name(""), "stage_by_name finds each, and nothing else");

	int in_flow_ok = 1;
	for (size_t i = 0; i < STAGE_COUNT; i++)
		if (!stage_in_flow(i) || stage_in_flow(i)->flow != (int)i) in_flow_ok = 0;
	TAP_OK(in_flow_ok && !stage_in_flow(STAGE_COUNT), "stage_in_flow walks the flow order, NULL past its end");
	/* the orders the tools show: status in flow order, fedsup's start order */
	TAP_OK(!strcmp(stage_in_flow(0)->name, "syncd") && !strcmp(stage_table[0].name, "validated")
	       && !strcmp(stage_table[STAGE_COUNT - 1].name, "syncd"),
	       "events enter at syncd; validated starts first, syncd last");
	return tap_done();
}
