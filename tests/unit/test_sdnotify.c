/* test_sdnotify.c: core/sdnotify.h against real AF_UNIX datagram sockets:
 * a path socket and an abstract one receive exactly the message; no
 * $NOTIFY_SOCKET is a no-op; a relative or oversized name and a socket
 * nobody listens on are errors, not crashes or SIGPIPE; $WATCHDOG_USEC and
 * $WATCHDOG_PID are honoured as sd_watchdog_enabled(3) documents. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "core/sdnotify.h"
#include "../lib/tap.h"

static int listener(const char *name, int abstract)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	memcpy(sa.sun_path + abstract, name, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + abstract + n + !abstract);
	if (bind(fd, (struct sockaddr *)&sa, len) < 0) { perror("bind"); exit(2); }
	return fd;
}

static int got(int fd, char *m, size_t cap)
{
	ssize_t r = recv(fd, m, cap - 1, MSG_DONTWAIT);
	if (r < 0) return -1;
	m[r] = 0;
	return (int)r;
}

int main(void)
{
	signal(SIGPIPE, SIG_DFL);   /* a SIGPIPE would kill the test: it must not happen */
	char dir[] = "/tmp/fp-sdn.XXXXXX", path[200], m[1100];
	if (!mkdtemp(dir)) return 2;
	snprintf(path, sizeof path, "%s/notify", dir);

	unsetenv("NOTIFY_SOCKET");
	TAP_OK(sdn_notify("READY=1") == 0, "no NOTIFY_SOCKET: a no-op");

	int fd = listener(path, 0);
	setenv("NOTIFY_SOCKET", path, 1);
	TAP_OK(sdn_notify("READY=1\nSTATUS=x") == 1, "path socket: sent");
	TAP_OK(got(fd, m, sizeof m) > 0 && strcmp(m, "READY=1\nSTATUS=x") == 0, "path socket: exactly the message");
	TAP_OK(sdn_notifyf("MAINPID=%d", 4242) == 1 && got(fd, m, sizeof m) > 0 && strcmp(m, "MAINPID=4242") == 0,
	       "formatted message");
	char big[1200];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	TAP_OK(sdn_notifyf("%s", big) == -1 && errno == EMSGSIZE && got(fd, m, sizeof m) < 0,
	       "a formatted message over 1 KiB is refused, nothing sent");

	char abs_name[64];
	snprintf(abs_name, sizeof abs_name, "fp-sdn-test-%d", (int)getpid());
	int afd = listener(abs_name, 1);
	char at[80];
	snprintf(at, sizeof at, "@%s", abs_name);
	setenv("NOTIFY_SOCKET", at, 1);
	TAP_OK(sdn_notify("WATCHDOG=1") == 1 && got(afd, m, sizeof m) > 0 && strcmp(m, "WATCHDOG=1") == 0,
	       "abstract socket (@name): exactly the message");
	TAP_OK(got(fd, m, sizeof m) < 0, "nothing went to the path socket");

	setenv("NOTIFY_SOCKET", "relative/sock", 1);
	TAP_OK(sdn_notify("READY=1") == -1 && errno == EINVAL, "a relative name is refused");
	char longp[200];
	memset(longp, 'x', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = 0;
	setenv("NOTIFY_SOCKET", longp, 1);
	TAP_OK(sdn_notify("READY=1") == -1 && errno == EINVAL, "a name longer than sun_path is refused");
	char gone[220];
	snprintf(gone, sizeof gone, "%s/nobody", dir);
	setenv("NOTIFY_SOCKET", gone, 1);
	TAP_OK(sdn_notify("READY=1") == -1, "nobody listening: an error, no signal");

	uint64_t us = 0;
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	TAP_OK(sdn_watchdog_usec(&us) == 0, "no WATCHDOG_USEC: no watchdog");
	setenv("WATCHDOG_USEC", "2000000", 1);
	TAP_OK(sdn_watchdog_usec(&us) == 1 && us == 2000000, "WATCHDOG_USEC=2000000");
	char pid[32];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	TAP_OK(sdn_watchdog_usec(&us) == 1, "WATCHDOG_PID is ours: watchdog on");
	setenv("WATCHDOG_PID", "1", 1);
	TAP_OK(sdn_watchdog_usec(&us) == 0, "WATCHDOG_PID is another process: off");
	unsetenv("WATCHDOG_PID");
	const char *bad[] = { "0", "-5", "12x", "", "99999999999999999999999" };
	int all_off = 1;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		setenv("WATCHDOG_USEC", bad[i], 1);
		all_off &= sdn_watchdog_usec(&us) == 0;
	}
	TAP_OK(all_off, "0, negative, trailing junk, empty and overflowing WATCHDOG_USEC: off");

	close(fd);
	close(afd);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
