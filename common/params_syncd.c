/* params_syncd.c: parameters of syncd ([syncd] section). */
#include <stddef.h>
#include "config.h"

const struct param params_syncd[] = {
	{ NULL, NULL, NULL, NULL }
};
