/* stages.h: the one table of fedpipe's stages. Everything that needs the
 * list of stages takes it from here: fedctl (status, stats, `fedctl
 * stages`, which scripts/fedsup and systemd/gen.sh read), served's
 * /metrics. Promises: stage_table lists every stage once, in start order
 * (fedsup starts each once the one before is ready, and stops them in
 * reverse); `flow` orders them as events flow through a node, the order
 * status and metrics show them in; a stage's socket is <run_dir>/<sock>,
 * named after the stage (frame_stage_path), and its systemd unit is
 * `unit`. */
#ifndef FP_STAGES_H
#define FP_STAGES_H
#include <stddef.h>

struct stage {
	const char *name;       /* program name and daemon_ops.name */
	const char *sock;       /* socket file in [node] run_dir */
	const char *unit;       /* systemd unit (systemd/gen.sh writes it) */
	int         flow;       /* 0 = where events enter a node */
	const char *emits;      /* stages it sends frames to (space separated) */
	const char *queue;      /* gauges whose sum is its queue depth (comma separated) */
};

#define STAGE_COUNT 7
extern const struct stage stage_table[STAGE_COUNT];   /* start order */

const struct stage *stage_by_name(const char *name);     /* NULL: no such stage */
const struct stage *stage_in_flow(size_t i);             /* i-th by flow; NULL past the end */

#endif
