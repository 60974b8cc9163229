/* params_feedpump.c: parameters of feedpump ([feedpump] section). */
#include <stddef.h>
#include "config.h"

const struct param params_feedpump[] = {
	{ NULL, NULL, NULL, NULL }
};
