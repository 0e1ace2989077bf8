/*
 * The QEMU run of the tinydtls client (psk_client.c built with
 * FOOTPRINT_QEMU), on mps2-an386 with semihosting, for its peak stack:
 * start-up code and vector table (mps2.ld), the board of board.h in RAM,
 * and a tinydtls PSK server in the same image that answers the client.
 *
 * The client runs unchanged: dtls_connect(), then its loop of
 * dtls_handle_message() / dtls_write() / dtls_check_retransmit(). The
 * harness drops the client's first datagram, so the ClientHello is sent
 * again by dtls_check_retransmit() after its timeout (the clock advances
 * 100 ms per loop), then the server answers with a HelloVerifyRequest, the
 * handshake completes, the client sends its CoAP GET and the server's
 * reply reaches the client's read callback.
 *
 * Stack painting: the stack is painted at reset and again after every
 * server turn, and its low-water mark is read before every server turn and
 * after main() returns, so the peak counts the client's calls (and the
 * reset handler's and main's frames, the harness's poll and send hooks),
 * not the server's.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tinydtls.h"
#include "dtls.h"
#include "net/af.h"
#include "board.h"

int main(void);
void footprint_reset(void);

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top, end;

static void fault(void) {
    for (;;) {
    }
}

__attribute__((section(".vectors"), used)) const void *const footprint_vectors[16] = {
    &__stack_top, footprint_reset, fault, fault, fault, fault, fault, fault,
    fault,        fault,           fault, fault, fault, fault, fault, fault,
};

/* --- Semihosting ------------------------------------------------------ */

static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void put(const char *s) {
    semihost(0x04, s); /* SYS_WRITE0 */
}

static void put_num(uint32_t n) {
    char buf[12];
    char *p = buf + sizeof(buf) - 1;
    *p = 0;
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    put(p);
}

static void finish(int ok) {
    /* SYS_EXIT: ADP_Stopped_ApplicationExit ends QEMU with status 0, any
     * other reason with status 1. */
    semihost(0x18, (const void *)(ok ? 0x20026u : 0x20023u));
    for (;;) {
    }
}

/* --- Stack painting --------------------------------------------------- */

#define PATTERN 0xCAFEF00Du
#define MARGIN 64u
static uint32_t stack_peak;

__attribute__((noinline)) static void paint(void) {
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (volatile uint32_t *p = &end; (uint32_t)(p + 1) <= sp - MARGIN; p++) {
        *p = PATTERN;
    }
}

__attribute__((noinline)) static void record_peak(void) {
    volatile uint32_t *p = &end;
    while (p < &__stack_top && *p == PATTERN) {
        p++;
    }
    uint32_t used = (uint32_t)&__stack_top - (uint32_t)p;
    if (used > stack_peak) {
        stack_peak = used;
    }
}

/* --- The link and the server ------------------------------------------ */

volatile struct board footprint_board;

#define QUEUE 6
struct queue {
    uint32_t len[QUEUE];
    uint8_t data[QUEUE][RX_MAX];
    uint32_t head, count;
};
static struct queue to_server, to_client;
static uint32_t client_datagrams, dropped, polls, server_requests;
static dtls_context_t *server;
static session_t client_addr;

static int push(struct queue *q, const volatile uint8_t *data, size_t len) {
    if (q->count == QUEUE || len > RX_MAX) {
        return -1;
    }
    uint32_t i = (q->head + q->count) % QUEUE;
    for (size_t k = 0; k < len; k++) {
        q->data[i][k] = data[k];
    }
    q->len[i] = len;
    q->count++;
    return 0;
}

void footprint_board_sent(void) {
    client_datagrams++;
    if (client_datagrams == 1) {
        dropped++; /* the first ClientHello is lost */
    } else if (push(&to_server, footprint_board.tx, footprint_board.tx_len) < 0) {
        put("harness: queue to the server full\n");
        finish(0);
    }
    footprint_board.tx_len = 0;
}

static int server_send(dtls_context_t *ctx, session_t *session, uint8 *data, size_t len) {
    (void)ctx;
    (void)session;
    return push(&to_client, data, len) < 0 ? -1 : (int)len;
}

static int server_read(dtls_context_t *ctx, session_t *session, uint8 *data, size_t len) {
    /* A CoAP 2.05 piggybacked on the ACK, echoing message ID and token. */
    static const unsigned char head[] = {0x61, 0x45};
    unsigned char reply[8] = {0, 0, 0, 0, 0, 0xff, 'h', 'i'};
    if (len < 5) {
        return 0;
    }
    memcpy(reply, head, sizeof(head));
    memcpy(reply + 2, data + 2, 3);
    server_requests++;
    return dtls_write(ctx, session, reply, sizeof(reply));
}

static int server_psk(dtls_context_t *ctx, const session_t *session, dtls_credentials_type_t type,
                      const unsigned char *desc, size_t desc_len, unsigned char *result,
                      size_t result_length) {
    static const unsigned char identity[] = "Client_identity";
    static const unsigned char key[] = "secretPSK";
    (void)ctx;
    (void)session;
    if (type == DTLS_PSK_KEY && desc_len == sizeof(identity) - 1 &&
        memcmp(desc, identity, desc_len) == 0 && result_length >= sizeof(key) - 1) {
        memcpy(result, key, sizeof(key) - 1);
        return sizeof(key) - 1;
    }
    if (type == DTLS_PSK_HINT) {
        return 0;
    }
    return dtls_alert_fatal_create(DTLS_ALERT_DECRYPT_ERROR);
}

static dtls_handler_t server_handlers = {
    .write = server_send,
    .read = server_read,
    .get_psk_info = server_psk,
};

void footprint_board_poll(void) {
    record_peak();
    if (++polls > 1000) {
        put("harness: the client did not finish in 1000 turns\n");
        finish(0);
    }
    footprint_board.millis += 100;
    if (!server) {
        server = dtls_new_context(NULL);
        if (!server) {
            put("harness: no context left for the server\n");
            finish(0);
        }
        dtls_set_handler(server, &server_handlers);
        dtls_session_init(&client_addr);
        client_addr.size = sizeof(client_addr.addr);
        client_addr.addr.family = AF_INET6;
        client_addr.addr.port = 5683;
        client_addr.addr.ipv6.u8[15] = 2;
    }
    while (to_server.count) {
        uint32_t i = to_server.head;
        to_server.head = (to_server.head + 1) % QUEUE;
        to_server.count--;
        dtls_handle_message(server, &client_addr, to_server.data[i], (int)to_server.len[i]);
    }
    dtls_check_retransmit(server, NULL);
    if (footprint_board.rx_len == 0 && to_client.count) {
        uint32_t i = to_client.head;
        to_client.head = (to_client.head + 1) % QUEUE;
        to_client.count--;
        for (uint32_t k = 0; k < to_client.len[i]; k++) {
            footprint_board.rx[k] = to_client.data[i][k];
        }
        footprint_board.rx_len = to_client.len[i];
    }
    paint();
}

/* --- Reset ------------------------------------------------------------- */

void footprint_reset(void) {
    /* The FPU on (CP10, CP11 full access), as -mfloat-abi=hard code may use it. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb");
    for (uint32_t *s = &__data_load, *d = &__data_start; d < &__data_end;) {
        *d++ = *s++;
    }
    for (uint32_t *d = &__bss_start; d < &__bss_end;) {
        *d++ = 0;
    }
    paint();
    int status = main();
    record_peak();
    put("tinydtls psk client under QEMU: ");
    put_num(client_datagrams);
    put(" datagrams sent by the client (");
    put_num(dropped);
    put(" dropped), ");
    put_num(server_requests);
    put(footprint_board.app_received == 0x61 ? " request served, the reply delivered"
                                             : " request served, no reply delivered");
    put("\nstack: peak ");
    put_num(stack_peak);
    put(" bytes\n");
    int ok = status == 0 && dropped == 1 && server_requests == 1 &&
             footprint_board.app_received == 0x61;
    put(ok ? "result: handshake after a retransmission, request and reply done\n"
           : "result: FAILED\n");
    finish(ok);
}
