/* Fixed-size object pools with RIOT's memarray interface, for tinydtls's
 * RIOT port (peers, handshakes, security parameters, retransmission queue
 * and the context come from static arrays, not from a heap). A free list
 * threaded through the unused elements. */
#ifndef FOOTPRINT_MEMARRAY_H
#define FOOTPRINT_MEMARRAY_H
#include <stddef.h>

typedef struct {
    void *free_list;
} memarray_t;

static inline void memarray_init(memarray_t *mem, void *data, size_t size, size_t num) {
    unsigned char *p = data;
    mem->free_list = NULL;
    while (num--) {
        void **element = (void **)(p + num * size);
        *element = mem->free_list;
        mem->free_list = element;
    }
}

static inline void *memarray_alloc(memarray_t *mem) {
    void **element = mem->free_list;
    if (element) {
        mem->free_list = *element;
    }
    return element;
}

static inline void memarray_free(memarray_t *mem, void *ptr) {
    if (ptr) {
        *(void **)ptr = mem->free_list;
        mem->free_list = ptr;
    }
}
#endif
