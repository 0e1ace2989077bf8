/*
 * A minimal PSK-only DTLS 1.2 client on tinydtls, for the footprint
 * comparison in scripts/footprint: built for the same Cortex-M4F as CSSF's
 * firmware, it calls what a real client calls, so that all of it is linked:
 * it creates a context, installs the PSK, event, read and send callbacks,
 * starts the handshake with dtls_connect(), feeds every received datagram
 * to dtls_handle_message(), sends one application record (a CoAP GET) with
 * dtls_write() once connected, and runs the retransmission timer with
 * dtls_check_retransmit().
 *
 * The radio, the clock and the random number generator are stubs: volatile
 * registers the compiler cannot see through (board.h; a real board puts a
 * driver, a timer and a TRNG there). The CoAP request is a fixed byte string: tinydtls
 * has no CoAP, so this client has none.
 *
 * Besides, the sizes of tinydtls's state objects and the limits this
 * configuration got are kept as constants (footprint_*), read back from the
 * object file by the measure script (nothing references them, so the image
 * does not carry them).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tinydtls.h"
#include "dtls.h"
#include "dtls_prng.h"
#include "dtls_time.h"
#include "crypto.h"
#include "peer.h"
#include "netq.h"
#include "net/af.h"

/* sizeof of tinydtls's state in this configuration, read from the ELF. */
const uint32_t footprint_sizeof_dtls_peer_t = sizeof(dtls_peer_t);
const uint32_t footprint_sizeof_dtls_handshake_parameters_t = sizeof(dtls_handshake_parameters_t);
const uint32_t footprint_sizeof_dtls_security_parameters_t = sizeof(dtls_security_parameters_t);
const uint32_t footprint_sizeof_dtls_context_t = sizeof(dtls_context_t);
const uint32_t footprint_sizeof_netq_t = sizeof(netq_t);
const uint32_t footprint_sizeof_session_t = sizeof(session_t);
/* The configuration this build got (the port's defaults where not set). */
const uint32_t footprint_DTLS_MAX_BUF = DTLS_MAX_BUF;
const uint32_t footprint_NETQ_MAXCNT = NETQ_MAXCNT;
const uint32_t footprint_DTLS_SECURITY_MAX = DTLS_SECURITY_MAX;
const uint32_t footprint_DTLS_DEFAULT_MAX_RETRANSMIT = DTLS_DEFAULT_MAX_RETRANSMIT;

#include "board.h"

static const unsigned char psk_identity[] = "Client_identity";
static const unsigned char psk_key[] = "secretPSK";
/* CoAP GET /hello, CON, message ID 0x1234, token 0x7a. */
static const unsigned char coap_get[] = {0x41, 0x01, 0x12, 0x34, 0x7a, 0xb5, 'h', 'e', 'l', 'l', 'o'};

static int connected;

uint32_t ztimer_now(int clock) {
    (void)clock;
    return BOARD->millis;
}

int dtls_prng(unsigned char *buf, size_t len) {
    while (len--) {
        *buf++ = (unsigned char)BOARD->trng;
    }
    return 1;
}

void dtls_prng_init(unsigned seed) {
    (void)seed;
}

static int send_to_peer(dtls_context_t *ctx, session_t *session, uint8 *data, size_t len) {
    (void)ctx;
    (void)session;
    if (len > sizeof(BOARD->tx)) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        BOARD->tx[i] = data[i];
    }
    BOARD->tx_len = len;
    BOARD_SENT();
    return (int)len;
}

static int read_from_peer(dtls_context_t *ctx, session_t *session, uint8 *data, size_t len) {
    (void)ctx;
    (void)session;
    /* The CoAP response: a real client would parse it here. */
    BOARD->app_received = len ? data[0] : 0;
    return 0;
}

static int handle_event(dtls_context_t *ctx, session_t *session, dtls_alert_level_t level,
                        unsigned short code) {
    (void)ctx;
    (void)session;
    if (level == 0 && code == DTLS_EVENT_CONNECTED) {
        connected = 1;
    } else if (level == DTLS_ALERT_LEVEL_FATAL) {
        connected = -1;
    }
    return 0;
}

static int get_psk_info(dtls_context_t *ctx, const session_t *session, dtls_credentials_type_t type,
                        const unsigned char *desc, size_t desc_len, unsigned char *result,
                        size_t result_length) {
    (void)ctx;
    (void)session;
    switch (type) {
    case DTLS_PSK_IDENTITY:
        if (result_length < sizeof(psk_identity) - 1) {
            return dtls_alert_fatal_create(DTLS_ALERT_INTERNAL_ERROR);
        }
        memcpy(result, psk_identity, sizeof(psk_identity) - 1);
        return sizeof(psk_identity) - 1;
    case DTLS_PSK_KEY:
        if (desc_len != sizeof(psk_identity) - 1 || memcmp(desc, psk_identity, desc_len) != 0 ||
            result_length < sizeof(psk_key) - 1) {
            return dtls_alert_fatal_create(DTLS_ALERT_DECRYPT_ERROR);
        }
        memcpy(result, psk_key, sizeof(psk_key) - 1);
        return sizeof(psk_key) - 1;
    case DTLS_PSK_HINT:
    default:
        return 0;
    }
}

static dtls_handler_t handlers = {
    .write = send_to_peer,
    .read = read_from_peer,
    .event = handle_event,
    .get_psk_info = get_psk_info,
};

int main(void) {
    static uint8 datagram[RX_MAX];
    session_t server;
    int sent = 0;

    dtls_init();
    dtls_context_t *ctx = dtls_new_context(NULL);
    if (!ctx) {
        return 1;
    }
    dtls_set_handler(ctx, &handlers);

    dtls_session_init(&server);
    server.size = sizeof(server.addr);
    server.addr.family = AF_INET6;
    server.addr.port = 5684;
    memset(&server.addr.ipv6, 0, sizeof(server.addr.ipv6));
    server.addr.ipv6.u8[15] = 1;

    if (dtls_connect(ctx, &server) < 0) {
        return 1;
    }
    while (connected >= 0) {
        BOARD_POLL();
        uint32_t len = BOARD->rx_len;
        if (len && len <= sizeof(datagram)) {
            for (uint32_t i = 0; i < len; i++) {
                datagram[i] = BOARD->rx[i];
            }
            BOARD->rx_len = 0;
            dtls_handle_message(ctx, &server, datagram, (int)len);
        }
        if (connected == 1 && !sent) {
            sent = dtls_write(ctx, &server, (uint8 *)coap_get, sizeof(coap_get)) > 0;
        }
        clock_time_t next = 0;
        dtls_check_retransmit(ctx, &next);
        if (BOARD->app_received) {
            break;
        }
    }
    dtls_free_context(ctx);
    return 0;
}
