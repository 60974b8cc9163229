/* syncd_state.h: the old name of store/fedstate.h, kept until every
 * includer names fedstate.h (cmd/syncd/syncd.h). */
#include "store/fedstate.h"
