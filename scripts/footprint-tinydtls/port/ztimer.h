/* The millisecond clock of tinydtls's RIOT port: the client provides
 * ztimer_now() (psk_client.c reads a tick counter). */
#ifndef FOOTPRINT_ZTIMER_H
#define FOOTPRINT_ZTIMER_H
#include <stdint.h>
#define ZTIMER_MSEC 0
uint32_t ztimer_now(int clock);
#endif
