#ifndef FOOTPRINT_NET_IPV6_ADDR_H
#define FOOTPRINT_NET_IPV6_ADDR_H
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
typedef union {
    uint8_t u8[16];
    uint32_t u32[4];
} ipv6_addr_t;
static inline bool ipv6_addr_equal(const ipv6_addr_t *a, const ipv6_addr_t *b) {
    return memcmp(a, b, sizeof(*a)) == 0;
}
#endif
