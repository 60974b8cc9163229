/* b64.h: unpadded base64 as Matrix uses it (libsodium's variants are the reference).
 * Promises: encoders never emit padding; the decoder accepts the standard or
 * URL-safe alphabet, with or without '=' padding, and nothing else. */
#ifndef FP_B64_H
#define FP_B64_H
#include <stddef.h>

/* Returns the encoded length (NUL-terminated in out, which needs
 * b64_enc_len(n) bytes). */
size_t b64_enc_len(size_t n);
size_t b64_encode(char *out, const unsigned char *in, size_t n);      /* standard */
size_t b64_encode_url(char *out, const unsigned char *in, size_t n);  /* URL-safe */
/* Decode src[0..n) into out (cap bytes). Returns decoded length or -1. */
long   b64_decode(unsigned char *out, size_t cap, const char *src, size_t n);
/* The two halves of b64_decode, exposed so tests can check they agree:
 * the fast table path (-2 when the input is not its common shape) and the
 * libsodium path (-1 on any fault). */
long   b64_decode_fast(unsigned char *out, size_t cap, const char *src, size_t n);
long   b64_decode_sodium(unsigned char *out, size_t cap, const char *src, size_t n);
/* libsodium's encoder (url: URL-safe alphabet), the reference the table
 * encoders behind b64_encode/b64_encode_url are tested against. */
size_t b64_encode_sodium(char *out, const unsigned char *in, size_t n, int url);

#endif
