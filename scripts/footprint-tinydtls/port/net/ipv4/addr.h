#ifndef FOOTPRINT_NET_IPV4_ADDR_H
#define FOOTPRINT_NET_IPV4_ADDR_H
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
typedef union {
    uint8_t u8[4];
    uint32_t u32;
} ipv4_addr_t;
static inline bool ipv4_addr_equal(const ipv4_addr_t *a, const ipv4_addr_t *b) {
    return a->u32 == b->u32;
}
#endif
