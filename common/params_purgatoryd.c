/* params_purgatoryd.c: parameters of purgatoryd ([purgatoryd] section). */
#include <stddef.h>
#include "config.h"

const struct param params_purgatoryd[] = {
	{ NULL, NULL, NULL, NULL }
};
