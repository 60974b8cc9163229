/* secretfile.c: small credential files (secretfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/secretfile.h"

int secretfile_read(const char *what, const char *path, void *buf, size_t cap, size_t *len,
                    char *err, size_t errlen)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		if (fd >= 0) close(fd);
		return -1;
	}
	if (sb.st_mode & 077) {
		snprintf(err, errlen, "%s %s is readable by others (mode %04o): chmod 600 it", what, path,
		         (unsigned)(sb.st_mode & 07777));
		close(fd);
		return -1;
	}
	size_t n = 0;
	for (;;) {
		if (n == cap) {
			char c;
			ssize_t more = read(fd, &c, 1);
			close(fd);
			if (more == 0) break;
			snprintf(err, errlen, "%s %s: larger than %zu bytes", what, path, cap);
			return -1;
		}
		ssize_t r = read(fd, (char *)buf + n, cap - n);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) {
			snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
			close(fd);
			return -1;
		}
		if (r == 0) { close(fd); break; }
		n += (size_t)r;
	}
	*len = n;
	return 0;
}
