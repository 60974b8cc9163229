/* curlev.h: libcurl's multi interface driven by a libevent loop, the one
 * copy of that glue. curl says which sockets and which timeout to watch;
 * the loop tells curl what fired; each finished transfer is handed to the
 * owner's done callback, once, after it has left the multi.
 * Promises:
 * - curlev_new initialises libcurl (curl_global_init) and curlev_free
 *   cleans it up; both run on the loop's thread only.
 * - done(arg, easy, priv, result, status): priv is the handle's
 *   CURLOPT_PRIVATE, status its HTTP response code (0 if none). The handle
 *   is already out of the multi: done may reuse, re-add or free it, and
 *   add or remove other handles.
 * - A socket is registered with the loop while curl wants it. Sockets the
 *   owner opens through curlev_socket_open (from its
 *   CURLOPT_OPENSOCKETFUNCTION) and closes through curlev_socket_close
 *   (CURLOPT_CLOSESOCKETFUNCTION, data = the curlev) stay registered for
 *   reading while their connection idles in curl's cache, so reusing a
 *   connection costs no epoll_ctl; if such an idle one becomes readable
 *   (the server closed it) it is dropped from the loop and curl finds out
 *   when it next looks. Any other socket is dropped when curl lets go. */
#ifndef FP_CURLEV_H
#define FP_CURLEV_H
#include <curl/curl.h>
#include <event2/event.h>

struct curlev;
typedef void curlev_done_fn(void *arg, CURL *easy, void *priv, CURLcode result, long status);

/* NULL (logged) if libcurl cannot be initialised. */
struct curlev *curlev_new(struct event_base *base, curlev_done_fn *done, void *arg);
/* Removes no handle: remove or clean up the owner's handles first (their
 * connections are closed here, through curlev_socket_close if set). */
void   curlev_free(struct curlev *ce);
CURLM *curlev_multi(struct curlev *ce);             /* for curl_multi_setopt */
/* Start a transfer: 0, or -1 when curl refuses the handle. */
int    curlev_add(struct curlev *ce, CURL *easy);
/* Stop a running transfer (no done call); a handle not added is a no-op. */
void   curlev_remove(struct curlev *ce, CURL *easy);

/* For the owner's CURLOPT_OPENSOCKETFUNCTION (after its own policy): the
 * socket, or CURL_SOCKET_BAD with errno set. */
curl_socket_t curlev_socket_open(struct curlev *ce, const struct curl_sockaddr *a);
/* A CURLOPT_CLOSESOCKETFUNCTION; CURLOPT_CLOSESOCKETDATA = the curlev. */
int    curlev_socket_close(void *ce, curl_socket_t s);

/* curl_slist_append that cannot fail: out of memory aborts (as xalloc). */
struct curl_slist *curlev_header(struct curl_slist *l, const char *header);

#endif
