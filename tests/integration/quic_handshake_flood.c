/* SPDX-License-Identifier: MIT */
/*
 * Handshakes in progress must not lock out real peers.
 *
 * A flooder sends genuine client Initials (a fresh ngtcp2 client
 * connection each, so each has fresh connection ids and a real
 * ClientHello for the listener's ALPN) at 100 per second from one UDP
 * socket and never answers. The listener allows 64 connections, as
 * `keyway send` does. Two seconds into the flood a real client dials,
 * echoes 64 KiB on a stream and closes; the flood goes on meanwhile.
 *
 * Asserted: the real client connects and its bytes come back intact; the
 * listener answered the flood with Retry packets; its handshakes in
 * progress stay within KW_HALFOPEN_MAX (128) and die within their 5 s
 * timeout once the flood stops. Before address validation the flood's
 * handshakes (10 s each) filled the 64 connections and the real client
 * timed out.
 */
#include "quic_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#define ALPN "kw-test-flood"
#define RATE 100 /* Initials per second */
#define PAYLOAD (64u << 10)

/* ---- the flooder: real client Initials, nobody behind them ---- */

typedef struct flood_conn {
  ngtcp2_crypto_conn_ref ref;
  ngtcp2_conn *qc;
} flood_conn;

static ngtcp2_conn *flood_get_conn(ngtcp2_crypto_conn_ref *ref) {
  return ((flood_conn *)ref->user_data)->qc;
}

static void flood_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx) {
  (void)ctx;
  for (size_t i = 0; i < len; i++)
    dest[i] = (uint8_t)random();
}

static int flood_new_cid(ngtcp2_conn *qc, ngtcp2_cid *cid, uint8_t *token,
                         size_t cidlen, void *user) {
  flood_rand(cid->data, cidlen, NULL);
  cid->datalen = cidlen;
  flood_rand(token, NGTCP2_STATELESS_RESET_TOKENLEN, NULL);
  return 0;
}

static uint64_t ts_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Writes one client Initial for fresh connection ids into buf. */
static ssize_t make_initial(uint8_t *buf, size_t cap,
                            const struct sockaddr_in *to) {
  flood_conn fc = {0};
  fc.ref.get_conn = flood_get_conn;
  fc.ref.user_data = &fc;
  gnutls_session_t s;
  gnutls_certificate_credentials_t cred;
  if (gnutls_certificate_allocate_credentials(&cred) < 0)
    return -1;
  if (gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA) < 0) {
    gnutls_certificate_free_credentials(cred);
    return -1;
  }
  ssize_t out = -1;
  gnutls_datum_t alpn = {(unsigned char *)ALPN, sizeof ALPN - 1};
  if (ngtcp2_crypto_gnutls_configure_client_session(s) != 0 ||
      gnutls_priority_set_direct(s, "NORMAL:-VERS-ALL:+VERS-TLS1.3:"
                                    "%DISABLE_TLS13_COMPAT_MODE", NULL) < 0 ||
      gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
      gnutls_alpn_set_protocols(s, &alpn, 1, 0) < 0)
    goto done;
  gnutls_session_set_ptr(s, &fc.ref);
  ngtcp2_cid dcid, scid;
  dcid.datalen = scid.datalen = 16;
  flood_rand(dcid.data, 16, NULL);
  flood_rand(scid.data, 16, NULL);
  ngtcp2_callbacks cb = {0};
  cb.client_initial = ngtcp2_crypto_client_initial_cb;
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.rand = flood_rand;
  cb.get_new_connection_id = flood_new_cid;
  ngtcp2_settings st;
  ngtcp2_settings_default(&st);
  st.initial_ts = ts_ns();
  ngtcp2_transport_params tp;
  ngtcp2_transport_params_default(&tp);
  tp.initial_max_streams_bidi = 16;
  tp.initial_max_data = 1 << 20;
  tp.initial_max_stream_data_bidi_local = 1 << 20;
  struct sockaddr_in local = {.sin_family = AF_INET};
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ngtcp2_path path = {{(ngtcp2_sockaddr *)&local, sizeof local},
                      {(ngtcp2_sockaddr *)to, sizeof *to},
                      NULL};
  if (ngtcp2_conn_client_new(&fc.qc, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1,
                             &cb, &st, &tp, NULL, &fc) != 0)
    goto done;
  ngtcp2_conn_set_tls_native_handle(fc.qc, s);
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi;
  out = ngtcp2_conn_write_pkt(fc.qc, &ps.path, &pi, buf, cap, ts_ns());
  ngtcp2_conn_del(fc.qc);
done:
  gnutls_deinit(s);
  gnutls_certificate_free_credentials(cred);
  return out;
}

static atomic_int flood_stop, flood_sent;
static struct sockaddr_in flood_to;

static void *flood_main(void *arg) {
  (void)arg;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  uint8_t buf[1500];
  uint64_t t0 = ts_ns();
  int sent = 0;
  while (!atomic_load(&flood_stop)) {
    uint64_t due = t0 + (uint64_t)sent * (1000000000ull / RATE);
    uint64_t now = ts_ns();
    if (now < due) {
      qt_sleep_ms((unsigned)((due - now) / 1000000 + 1));
      continue;
    }
    ssize_t n = make_initial(buf, sizeof buf, &flood_to);
    if (n > 0 && sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&flood_to,
                        sizeof flood_to) == n)
      atomic_fetch_add(&flood_sent, 1);
    sent++;
  }
  close(fd);
  return NULL;
}

/* ---- the listener: echoes ---- */

static void srv_opened(kw_stream *s, void *u) { qt_echo_new(s); }
static void srv_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {
  qt_echo_data(s, d, n, fin);
}
static void srv_writable(kw_stream *s, void *u) {
  if (kw_stream_get_user(s))
    qt_echo_flush(s, kw_stream_get_user(s));
}
static void srv_closed(kw_stream *s, kw_err e, uint64_t c, void *u) { qt_echo_free(s); }

static kw_endpoint_stats srv_stats;
static void get_stats(kw_endpoint *ep, void *arg) { kw_endpoint_stats_get(ep, &srv_stats); }

/* ---- the real client ---- */

static kw_conn *cconn;
static atomic_int connect_err = -1, echoed;
static double t_connected;
static qt_tx ctx_ = {7, PAYLOAD, 0};
static qt_rx crx = {7, PAYLOAD, 0, false, false};

static void cli_data(kw_stream *s, const uint8_t *d, size_t n, bool fin, void *u) {
  qt_rx_take(&crx, d, n, fin);
  if (qt_rx_complete(&crx))
    atomic_store(&echoed, 1);
}
static void cli_writable(kw_stream *s, void *u) { qt_tx_pump(s, &ctx_); }

static void connected(kw_conn *c, kw_err e, void *arg) {
  cconn = c;
  t_connected = qt_now_ms();
  if (!e) {
    kw_stream *s;
    kw_err oe = kw_conn_open_stream(c, true, &s);
    EXPECT(oe == KW_OK, "open stream: %s", kw_errname(oe));
    if (!oe)
      qt_tx_pump(s, &ctx_);
  }
  atomic_store(&connect_err, (int)e);
}

static kw_endpoint_addr target;
static void dial(kw_endpoint *ep, void *arg) {
  kw_err e = kw_endpoint_connect(ep, &target, ALPN, connected, NULL);
  if (e)
    atomic_store(&connect_err, (int)e);
}
static void close_conn(kw_endpoint *ep, void *arg) { kw_conn_close(cconn, 0, NULL); }

int main(void) {
  qt_begin(90);
  kw_callbacks scb = {.stream_opened = srv_opened,
                      .stream_data = srv_data,
                      .stream_writable = srv_writable,
                      .stream_closed = srv_closed};
  kw_callbacks ccb = {.stream_data = cli_data, .stream_writable = cli_writable};
  qt_opts so = {.alpn = ALPN, .max_conns = 64};
  kw_endpoint *server = qt_endpoint_ex(&so, &scb, NULL);
  kw_endpoint *client = qt_endpoint(NULL, &ccb, NULL);
  target = qt_addr(server, 4);
  flood_to.sin_family = AF_INET;
  memcpy(&flood_to.sin_addr, target.addrs[0].ip, 4);
  flood_to.sin_port = htons(target.addrs[0].port);

  pthread_t th;
  pthread_create(&th, NULL, flood_main, NULL);
  qt_sleep_ms(2000);
  qt_call(server, get_stats, NULL);
  unsigned hs_at_dial = (unsigned)srv_stats.handshakes_in_progress;

  double t0 = qt_now_ms();
  CHECK(kw_endpoint_post(client, dial, NULL) == KW_OK, "post");
  QT_WAIT(atomic_load(&connect_err) != -1, 15000);
  CHECK(atomic_load(&connect_err) == KW_OK, "the real client connects during the "
        "flood: %s", kw_errname((kw_err)atomic_load(&connect_err)));
  double connect_ms = t_connected - t0;
  if (atomic_load(&connect_err) == KW_OK) {
    QT_WAIT(atomic_load(&echoed), 10000);
    CHECK(atomic_load(&echoed) == 1, "64 KiB echoed during the flood (%zu bytes "
          "back)", crx.got);
    qt_call(client, close_conn, NULL);
  }
  qt_sleep_ms(1000);
  qt_call(server, get_stats, NULL);
  kw_endpoint_stats during = srv_stats;
  atomic_store(&flood_stop, 1);
  pthread_join(th, NULL);
  printf("flood: %d Initials sent; listener: %u handshakes in progress at the "
         "dial, %llu in flight at the end, %llu Retry sent, %llu refused; "
         "real client connected in %.0f ms\n",
         atomic_load(&flood_sent), hs_at_dial,
         (unsigned long long)during.handshakes_in_progress,
         (unsigned long long)during.retries_sent,
         (unsigned long long)during.drops_refused, connect_ms);
  CHECK(atomic_load(&flood_sent) >= 2 * RATE, "the flood ran (%d Initials)",
        atomic_load(&flood_sent));
  CHECK(during.retries_sent > 0, "the listener answered the flood with Retry");
  CHECK(during.handshakes_in_progress <= 128, "handshakes in progress bounded "
        "(%llu)", (unsigned long long)during.handshakes_in_progress);

  /* the flood's handshakes time out within 5 s */
  for (int i = 0; i < 70; i++) {
    qt_call(server, get_stats, NULL);
    if (srv_stats.handshakes_in_progress == 0)
      break;
    qt_sleep_ms(100);
  }
  CHECK(srv_stats.handshakes_in_progress == 0, "%llu handshakes left 7 s after "
        "the flood", (unsigned long long)srv_stats.handshakes_in_progress);

  kw_endpoint_close(client);
  kw_endpoint_close(server);
  kw_endpoint_free(client);
  kw_endpoint_free(server);
  return qt_report();
}
