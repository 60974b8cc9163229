/* params_validated.c: parameters of validated ([validated] section). */
#include <stddef.h>
#include "config.h"

const struct param params_validated[] = {
	{ NULL, NULL, NULL, NULL }
};
