/* params_fetchd.c: parameters of fetchd ([fetchd] section). */
#include <stddef.h>
#include "config.h"

const struct param params_fetchd[] = {
	{ NULL, NULL, NULL, NULL }
};
