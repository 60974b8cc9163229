/* validated_main.c: validated's entry point: --jsonl is a plain filter with
 * its own option loop; everything else (daemon, --stdio) runs in the shared
 * daemon skeleton. */
#include <string.h>
#include "validated.h"

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--jsonl") == 0)
			return validated_jsonl(argc, argv);
	}
	return validated_daemon(argc, argv);
}
