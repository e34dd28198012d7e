/* SPDX-License-Identifier: MIT */
/*
 * keyway-bench — figures for the library on loopback, in one process.
 *
 *   keyway-bench throughput [--mib N] [--streams K] [--owned]
 *                                   bulk transfer, MB/s; --owned hands the
 *                                   stream the buffer (kw_stream_write_owned)
 *                                   instead of having it copied
 *   keyway-bench latency [-n N]     connect to first echoed byte, ms
 *   keyway-bench idle-rss           memory of an idle endpoint, KiB
 *   --cc cubic|bbr|reno             congestion controller of both ends
 *   --json                          one JSON object on stdout instead
 *
 * Two endpoints (a listener and a dialer) bound to 127.0.0.1 and ::1 talk
 * over IPv4 loopback. Each runs its loop on a library thread; the main
 * thread waits for the callbacks' results. Figures are printed, never judged.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyway.h"

#define ALPN "keyway-bench/1"
#define CHUNK (1u << 20)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, kw_err err) {
  fprintf(stderr, "keyway-bench: %s: %s\n", what, kw_strerror(err));
  exit(1);
}

/* ---- waiting for the loop threads ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool finished;
static kw_err failure;

/* Loop thread: the run is over (err: why it failed). */
static void finish(kw_err err) {
  pthread_mutex_lock(&mu);
  finished = true;
  if (err && !failure)
    failure = err;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

/* Main thread: waits up to `seconds` for finish(); exits on failure. */
static void wait_finished(double seconds) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += (time_t)seconds;
  pthread_mutex_lock(&mu);
  while (!finished)
    if (pthread_cond_timedwait(&cv, &mu, &dl) != 0)
      break;
  bool ok = finished;
  kw_err err = failure;
  pthread_mutex_unlock(&mu);
  if (!ok)
    die("run", KW_ERR_TIMEOUT);
  if (err)
    die("run", err);
}

/* ---- endpoints ---- */

static kw_cc cc = KW_CC_BBR; /* --cc (the library's default) */

static kw_endpoint *endpoint(const char *alpn, const kw_callbacks *cbs) {
  kw_config *cfg;
  kw_sockaddr b4, b6;
  kw_endpoint *ep;
  kw_err err = kw_config_new(&cfg);
  if (err)
    die("config", err);
  kw_sockaddr_parse("127.0.0.1:0", &b4);
  kw_sockaddr_parse("[::1]:0", &b6);
  kw_config_add_bind(cfg, &b4);
  kw_config_add_bind(cfg, &b6);
  if (alpn)
    kw_config_add_alpn(cfg, alpn);
  if (cbs)
    kw_config_set_callbacks(cfg, cbs, NULL);
  kw_config_set_congestion_control(cfg, cc);
  err = kw_endpoint_new(cfg, &ep);
  kw_config_free(cfg);
  if (err)
    die("endpoint", err);
  if ((err = kw_endpoint_start(ep)))
    die("start", err);
  return ep;
}

/* The listener's address, IPv4 only. */
static kw_endpoint_addr target;
static void set_target(kw_endpoint *ep) {
  kw_endpoint_get_addr(ep, &target);
  size_t n = 0;
  for (size_t i = 0; i < target.n_addrs; i++)
    if (target.addrs[i].family == 4)
      target.addrs[n++] = target.addrs[i];
  target.n_addrs = n;
}

static void print_json(json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
  printf("%s\n", s);
  free(s);
  json_decref(o);
}

/* ---- throughput ---- */

static struct {
  uint64_t per_stream, last_extra; /* bytes each stream sends */
  int streams;
  bool owned; /* kw_stream_write_owned of tp.chunk, shared by all writes */
  uint8_t *chunk;
  double t_start, t_end; /* connect callback .. last fin at the listener */
  uint64_t received;     /* listener loop thread */
  int fins;
  kw_conn *conn; /* dialer loop thread */
  kw_conn_stats stats;
} tp;

typedef struct sender {
  uint64_t left;
} sender;

/* the stream only reads tp.chunk, which outlives both endpoints */
static void tp_release(void *user, uint8_t *data) {
  (void)user;
  (void)data;
}

static void tp_pump(kw_stream *s) {
  sender *x = kw_stream_get_user(s);
  while (tp.owned && x->left > 0) {
    size_t n = x->left < CHUNK ? (size_t)x->left : CHUNK;
    kw_err err =
        kw_stream_write_owned(s, tp.chunk, n, x->left == n, tp_release, NULL);
    if (err == KW_ERR_AGAIN)
      return;
    if (err) {
      finish(err);
      return;
    }
    x->left -= n;
  }
  while (x->left > 0) {
    size_t n = x->left < CHUNK ? (size_t)x->left : CHUNK;
    size_t w = 0;
    kw_err err = kw_stream_write(s, tp.chunk, n, x->left == n, &w);
    x->left -= w;
    if (err == KW_ERR_AGAIN || w < n)
      return;
    if (err) {
      finish(err);
      return;
    }
  }
}

static void tp_writable(kw_stream *s, void *u) {
  tp_pump(s);
}

static void tp_closed_stream(kw_stream *s, kw_err err, uint64_t code, void *u) {
  free(kw_stream_get_user(s));
}

static void tp_recv(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                    void *u) {
  tp.received += n;
  if (fin && ++tp.fins == tp.streams) {
    tp.t_end = now_s();
    finish(KW_OK);
  }
}

static void tp_connected(kw_conn *c, kw_err err, void *arg) {
  if (err) {
    finish(err);
    return;
  }
  tp.conn = c;
  tp.t_start = now_s();
  for (int i = 0; i < tp.streams; i++) {
    kw_stream *s;
    if ((err = kw_conn_open_stream(c, true, &s))) {
      finish(err);
      return;
    }
    sender *x = malloc(sizeof *x);
    x->left = tp.per_stream + (i == 0 ? tp.last_extra : 0);
    kw_stream_set_user(s, x);
    tp_pump(s);
  }
}

static void tp_dial(kw_endpoint *ep, void *arg) {
  kw_err err = kw_endpoint_connect(ep, &target, ALPN, tp_connected, NULL);
  if (err)
    finish(err);
}

static void tp_stats(kw_endpoint *ep, void *arg) {
  kw_conn_stats_get(tp.conn, &tp.stats);
  finish(KW_OK);
}

static int throughput(uint64_t mib, int streams, bool owned, bool json) {
  kw_callbacks lcb = {.stream_data = tp_recv};
  kw_callbacks dcb = {.stream_writable = tp_writable,
                      .stream_closed = tp_closed_stream};
  uint64_t total = mib << 20;
  tp.streams = streams;
  tp.owned = owned;
  tp.per_stream = total / (uint64_t)streams;
  tp.last_extra = total % (uint64_t)streams;
  tp.chunk = malloc(CHUNK);
  for (size_t i = 0; i < CHUNK; i++)
    tp.chunk[i] = (uint8_t)(i * 131);

  kw_endpoint *listener = endpoint(ALPN, &lcb);
  kw_endpoint *dialer = endpoint(NULL, &dcb);
  set_target(listener);
  kw_endpoint_post(dialer, tp_dial, NULL);
  wait_finished(600);
  finished = false;
  kw_endpoint_post(dialer, tp_stats, NULL);
  wait_finished(10);

  kw_endpoint_close(dialer);
  kw_endpoint_close(listener);
  kw_endpoint_free(dialer);
  kw_endpoint_free(listener);
  free(tp.chunk);

  double secs = tp.t_end - tp.t_start;
  double mbps = (double)tp.received / secs / 1e6;
  if (tp.received != total)
    die("received byte count", KW_ERR_STATE);
  if (json) {
    print_json(json_pack("{s:s, s:I, s:i, s:b, s:f, s:f, s:f, s:I, s:f}",
                         "mode", "throughput", "bytes", (json_int_t)tp.received,
                         "streams", streams, "owned", owned, "seconds", secs,
                         "mbytes_per_s", mbps, "gbit_per_s", mbps * 8 / 1000,
                         "pkts_lost", (json_int_t)tp.stats.pkts_lost,
                         "min_rtt_ms", tp.stats.min_rtt_ms));
  } else {
    printf("throughput: %llu MiB over %d stream%s%s in %.3f s: %.1f MB/s (%.2f "
           "Gbit/s), "
           "%llu packets lost, min RTT %.3f ms\n",
           (unsigned long long)mib, streams, streams == 1 ? "" : "s",
           owned ? " (owned buffers)" : "", secs, mbps, mbps * 8 / 1000,
           (unsigned long long)tp.stats.pkts_lost, tp.stats.min_rtt_ms);
  }
  return 0;
}

/* ---- latency: kw_endpoint_connect .. first byte of a 1-byte echo ---- */

static struct {
  int n, done;
  double *first_byte, *handshake; /* ms per connection */
  double t0;
  kw_endpoint *dialer;
} lat;

static void lat_dial(kw_endpoint *ep, void *arg);

static void lat_echo(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                     void *u) {
  size_t w;
  if (n)
    kw_stream_write(s, d, n, fin, &w);
  else if (fin)
    kw_stream_finish(s);
}

static void lat_reply(kw_stream *s, const uint8_t *d, size_t n, bool fin,
                      void *u) {
  if (n == 0 || kw_stream_get_user(s))
    return;
  kw_stream_set_user(s, s); /* first byte seen */
  lat.first_byte[lat.done++] = (now_s() - lat.t0) * 1e3;
  kw_conn_close(kw_stream_conn(s), 0, NULL);
  if (lat.done == lat.n)
    finish(KW_OK);
  else
    kw_endpoint_post(lat.dialer, lat_dial, NULL); /* the next connection */
}

static void lat_connected(kw_conn *c, kw_err err, void *arg) {
  if (err) {
    finish(err);
    return;
  }
  lat.handshake[lat.done] = (now_s() - lat.t0) * 1e3;
  kw_stream *s;
  size_t w;
  if ((err = kw_conn_open_stream(c, true, &s)) ||
      (err = kw_stream_write(s, (const uint8_t *)"x", 1, true, &w)))
    finish(err);
}

static void lat_dial(kw_endpoint *ep, void *arg) {
  lat.t0 = now_s();
  kw_err err = kw_endpoint_connect(ep, &target, ALPN, lat_connected, NULL);
  if (err)
    finish(err);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The q-quantile (0..1) of sorted v[0..n), nearest rank. */
static double quantile(const double *v, int n, double q) {
  int i = (int)(q * n + 0.999999) - 1;
  return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static int latency(int n, bool json) {
  kw_callbacks lcb = {.stream_data = lat_echo};
  kw_callbacks dcb = {.stream_data = lat_reply};
  lat.n = n;
  lat.first_byte = calloc((size_t)n, sizeof(double));
  lat.handshake = calloc((size_t)n, sizeof(double));
  kw_endpoint *listener = endpoint(ALPN, &lcb);
  lat.dialer = endpoint(NULL, &dcb);
  set_target(listener);
  kw_endpoint_post(lat.dialer, lat_dial, NULL);
  wait_finished(600);
  kw_endpoint_close(lat.dialer);
  kw_endpoint_close(listener);
  kw_endpoint_free(lat.dialer);
  kw_endpoint_free(listener);

  qsort(lat.first_byte, (size_t)n, sizeof(double), cmp_double);
  qsort(lat.handshake, (size_t)n, sizeof(double), cmp_double);
  double med = quantile(lat.first_byte, n, 0.5),
         p99 = quantile(lat.first_byte, n, 0.99);
  double hs = quantile(lat.handshake, n, 0.5);
  if (json)
    print_json(json_pack("{s:s, s:i, s:f, s:f, s:f}", "mode", "latency",
                         "connections", n, "median_ms", med, "p99_ms", p99,
                         "handshake_median_ms", hs));
  else
    printf("latency: %d connections, connect to first echoed byte: median %.3f "
           "ms, "
           "p99 %.3f ms (handshake alone: median %.3f ms)\n",
           n, med, p99, hs);
  free(lat.first_byte);
  free(lat.handshake);
  return 0;
}

/* ---- idle-rss ---- */

/* VmRSS and VmHWM of this process in KiB, from /proc/self/status. */
static void mem_kib(long *rss, long *hwm) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  *rss = *hwm = -1;
  while (f && fgets(line, sizeof line, f)) {
    sscanf(line, "VmRSS: %ld", rss);
    sscanf(line, "VmHWM: %ld", hwm);
  }
  if (f)
    fclose(f);
}

static int idle_rss(bool json) {
  long rss0, hwm0, rss, hwm;
  mem_kib(&rss0, &hwm0);
  kw_endpoint *ep = endpoint(ALPN, NULL);
  sleep(1);
  mem_kib(&rss, &hwm);
  kw_endpoint_close(ep);
  kw_endpoint_free(ep);
  if (json)
    print_json(json_pack("{s:s, s:i, s:i, s:i}", "mode", "idle-rss",
                         "vmrss_kib", (int)rss, "vmhwm_kib", (int)hwm,
                         "rss_before_kib", (int)rss0));
  else
    printf("idle endpoint after 1 s: VmRSS %ld KiB, VmHWM %ld KiB (process "
           "before the "
           "endpoint: %ld KiB)\n",
           rss, hwm, rss0);
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: keyway-bench throughput [--mib N] [--streams K] "
                  "[--owned] [--cc cubic|bbr|reno] [--json]\n"
                  "       keyway-bench latency [-n N] [--json]\n"
                  "       keyway-bench idle-rss [--json]\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage();
  const char *mode = argv[1];
  long mib = 1024, streams = 1, n = 200;
  bool json = false, owned = false;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    char *end = NULL;
    if (!strcmp(a, "--json")) {
      json = true;
      continue;
    }
    if (!strcmp(a, "--owned")) {
      owned = true;
      continue;
    }
    if (i + 1 >= argc)
      return usage();
    if (!strcmp(a, "--cc")) {
      const char *v = argv[++i];
      if (!strcmp(v, "cubic"))
        cc = KW_CC_CUBIC;
      else if (!strcmp(v, "bbr"))
        cc = KW_CC_BBR;
      else if (!strcmp(v, "reno"))
        cc = KW_CC_RENO;
      else
        return usage();
      continue;
    }
    long v = strtol(argv[++i], &end, 10);
    if (*end || v <= 0)
      return usage();
    if (!strcmp(a, "--mib"))
      mib = v;
    else if (!strcmp(a, "--streams") && v <= 1000)
      streams = v;
    else if (!strcmp(a, "-n") && v <= 100000)
      n = v;
    else
      return usage();
  }
  if (!strcmp(mode, "throughput"))
    return throughput((uint64_t)mib, (int)streams, owned, json);
  if (!strcmp(mode, "latency"))
    return latency((int)n, json);
  if (!strcmp(mode, "idle-rss"))
    return idle_rss(json);
  return usage();
}
