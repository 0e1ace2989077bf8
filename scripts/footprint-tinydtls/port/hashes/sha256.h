/* RIOT's SHA-256 interface over tinydtls's own SHA-256 (sha2/sha2.c), so
 * the hash compiled in is tinydtls's, as in its other ports. */
#ifndef FOOTPRINT_SHA256_H
#define FOOTPRINT_SHA256_H
#include <stddef.h>
#include "sha2/sha2.h"
#define SHA256_DIGEST_LENGTH 32
typedef dtls_sha256_ctx sha256_context_t;
static inline void sha256_init(sha256_context_t *ctx) {
    dtls_sha256_init(ctx);
}
static inline void sha256_update(sha256_context_t *ctx, const void *data, size_t len) {
    dtls_sha256_update(ctx, data, len);
}
static inline void sha256_final(sha256_context_t *ctx, void *digest) {
    dtls_sha256_final(digest, ctx);
}
/* hmac.h redefines this as (SHA256_DIGEST_LENGTH): the same value. */
#undef DTLS_SHA256_DIGEST_LENGTH
#endif
