/* sdnotify.c: sd_notify's datagram protocol without libsystemd (sdnotify.h). */
#include "core/sdnotify.h"
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sdn_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path) return 0;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	size_t n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa.sun_path || n < 2) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@') sa.sun_path[0] = 0;   /* the abstract namespace */
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) return -1;
	ssize_t w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, len);
	int e = errno;
	close(fd);
	errno = e;
	return w < 0 ? -1 : 1;
}

int sdn_notifyf(const char *fmt, ...)
{
	char m[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof m) {
		errno = EMSGSIZE;
		return -1;
	}
	return sdn_notify(m);
}

int sdn_watchdog_usec(uint64_t *usec)
{
	const char *u = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
	if (!u || !*u) return 0;
	if (p && *p) {
		char *end;
		long long pid = strtoll(p, &end, 10);
		if (*end || pid != (long long)getpid()) return 0;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(u, &end, 10);
	if (errno || *end || v == 0 || u[0] == '-') return 0;
	*usec = (uint64_t)v;
	return 1;
}
