/* The client's board (psk_client.c): a datagram radio, a millisecond
 * counter and a TRNG. In the measured image they are memory-mapped
 * registers at an address in the peripheral region (that image never
 * runs); in the QEMU run (FOOTPRINT_QEMU, qemu_run.c) they are RAM that the
 * harness serves: it is polled once per loop and told of every datagram
 * sent. */
#ifndef FOOTPRINT_BOARD_H
#define FOOTPRINT_BOARD_H
#include <stdint.h>
#include "global.h"

#define RX_MAX 256
struct board {
    uint32_t rx_len;
    uint32_t tx_len;
    uint32_t millis;
    uint32_t trng;
    uint32_t app_received;
    uint8_t rx[RX_MAX];
    uint8_t tx[DTLS_MAX_BUF];
};

#ifdef FOOTPRINT_QEMU
extern volatile struct board footprint_board;
void footprint_board_poll(void);
void footprint_board_sent(void);
#define BOARD (&footprint_board)
#define BOARD_POLL() footprint_board_poll()
#define BOARD_SENT() footprint_board_sent()
#else
#define BOARD ((volatile struct board *)0x40010000u)
#define BOARD_POLL() ((void)0)
#define BOARD_SENT() ((void)0)
#endif
#endif
