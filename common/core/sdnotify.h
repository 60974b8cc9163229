/* sdnotify.h: the systemd readiness and watchdog protocol, spoken directly
 * (sd_notify(3) without libsystemd): one datagram per message to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the
 * abstract namespace). Without $NOTIFY_SOCKET every call is a no-op.
 * Promises: never blocks (MSG_DONTWAIT), never raises SIGPIPE, keeps no
 * descriptor open between calls, never writes to anything but that socket. */
#ifndef FP_CORE_SDNOTIFY_H
#define FP_CORE_SDNOTIFY_H
#include <stdint.h>

/* 1 sent, 0 no $NOTIFY_SOCKET, -1 the socket is unusable (errno set). */
int sdn_notify(const char *msg);
int sdn_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 1 and *usec set when $WATCHDOG_USEC asks this process (and
 * $WATCHDOG_PID, if set, is our pid) for pings; 0 otherwise. */
int sdn_watchdog_usec(uint64_t *usec);
#endif
