/* params_served.c: parameters of served ([served] section). */
#include <stddef.h>
#include "config.h"

const struct param params_served[] = {
	{ NULL, NULL, NULL, NULL }
};
