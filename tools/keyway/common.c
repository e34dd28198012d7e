/* SPDX-License-Identifier: MIT */
/* Shared pieces of the keyway CLI (see common.h). */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *cli_id(const uint8_t id[KW_ID_LEN], char *buf) {
  kw_id_to_string(id, buf, KW_ID_STRLEN + 1);
  return buf;
}

static void emit_json(json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
  if (s) {
    fprintf(stderr, "%s\n", s);
    free(s);
  }
  json_decref(o);
}

void cli_info(cli *c, const char *fmt, ...) {
  if (c->json || c->verbosity < 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static int vfail(cli *c, kw_err code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static int vfail(cli *c, kw_err code, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (c->json)
    emit_json(json_pack("{s:s, s:s, s:s}", "event", "error", "code",
                        kw_errname(code), "message", msg));
  else
    fprintf(stderr, "keyway: %s\n", msg);
  return 1;
}

int cli_fail(cli *c, kw_err code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(c, code, fmt, ap);
  va_end(ap);
  return 1;
}

int cli_fail_connect(cli *c, const uint8_t id[KW_ID_LEN], const char *alpn,
                     kw_err err) {
  char tgt[KW_ID_STRLEN + 1];
  cli_id(id, tgt);
  switch (err) {
  case KW_ERR_KEY_MISMATCH:
    if (c->mismatch[0]) /* from the library's tls.key_mismatch log line */
      return cli_fail(c, err, "%s: %s", c->cmd, c->mismatch);
    return cli_fail(c, err, "%s: the remote did not present key %s", c->cmd,
                    tgt);
  case KW_ERR_TIMEOUT:
    return cli_fail(c, err, "%s: no answer from %.10s within %g s", c->cmd, tgt,
                    c->timeout_s > 0 ? c->timeout_s : 10.0);
  case KW_ERR_NOT_FOUND:
    return cli_fail(c, err,
                    "%s: %.10s is unknown at the relay (not online, or "
                    "using another relay)",
                    c->cmd, tgt);
  case KW_ERR_ALPN:
    return cli_fail(c, err, "%s: %.10s does not accept %s", c->cmd, tgt, alpn);
  default:
    return cli_fail(c, err, "%s: cannot connect to %.10s: %s", c->cmd, tgt,
                    kw_strerror(err));
  }
}

const char *cli_code_reason(uint64_t code, char *buf, size_t n) {
  switch (code) {
  case CLI_CODE_DONE:
    return "finished normally";
  case CLI_CODE_ERROR:
    return "it failed";
  case CLI_CODE_PROTOCOL:
    return "it speaks another protocol version";
  case CLI_CODE_OUTPUT:
    return "its output was closed";
  case CLI_CODE_BUSY:
    return "it is busy with another peer";
  case CLI_CODE_INTERRUPTED:
    return "it was interrupted (Ctrl-C)";
  case CLI_CODE_REFUSED:
    return "its TCP service refused the connection";
  default:
    snprintf(buf, n, "application code %llu (not one of keyway's)",
             (unsigned long long)code);
    return buf;
  }
}

const char *cli_close_reason(kw_err err, uint64_t code, char *buf, size_t n) {
  switch (err) {
  case KW_OK:
    return "closed by this side";
  case KW_ERR_APP_CLOSED:
    if (code == CLI_CODE_DONE)
      return "the other side closed the connection";
    if (code == CLI_CODE_INTERRUPTED)
      return "the other side stopped (interrupted)";
    {
      char b[96];
      snprintf(buf, n, "the other side closed the connection: %s",
               cli_code_reason(code, b, sizeof b));
    }
    return buf;
  case KW_ERR_IDLE:
    return "no packets from the other side for the idle timeout (it "
           "vanished, or the network went away)";
  case KW_ERR_PEER:
    return "the other side closed the connection with a transport error";
  case KW_ERR_CLOSED:
    return "the connection was closed";
  default:
    snprintf(buf, n, "%s", kw_strerror(err));
    return buf;
  }
}

void cli_emit_disconnected(cli *c, kw_conn *conn, kw_err err, uint64_t code) {
  uint8_t id[KW_ID_LEN];
  char idt[KW_ID_STRLEN + 1], b[160];
  kw_conn_remote_id(conn, id);
  cli_id(id, idt);
  const char *why = cli_close_reason(err, code, b, sizeof b);
  if (c->json) {
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s}", "event", "disconnected", "remote",
                  idt, "reason", kw_errname(err), "message", why);
    if (err == KW_ERR_APP_CLOSED)
      json_object_set_new(o, "code", json_integer((json_int_t)code));
    emit_json(o);
  } else if (c->verbosity >= 0) {
    fprintf(stderr, "peer %.10s went: %s\n", idt, why);
  }
}

const char *cli_no_path_reason(cli *c) {
  if (c->direct_only)
    return "the target names no direct address (--direct-only uses no "
           "relay path)";
  if (c->relay_only)
    return "the target names no relay and this endpoint has none "
           "(--relay-only needs a relay)";
  return "the target has no address and no relay to resolve it (pass "
         "--relay, or --lan for a peer on this network)";
}

int cli_usage_error(cli *c, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (c->json)
    emit_json(json_pack("{s:s, s:s, s:s}", "event", "error", "code", "USAGE",
                        "message", msg));
  else
    fprintf(stderr, "keyway %s: %s (see 'keyway %s --help')\n",
            c->cmd ? c->cmd : "", msg, c->cmd ? c->cmd : "");
  return 2;
}

/* ---- keys ------------------------------------------------------------------
 */

static int default_key_path(char *out, size_t n) {
  const char *x = getenv("XDG_CONFIG_HOME");
  if (x && *x)
    return snprintf(out, n, "%s/keyway/secret.key", x) < (int)n ? 0 : -1;
  const char *h = getenv("HOME");
  if (!h || !*h)
    return -1;
  return snprintf(out, n, "%s/.config/keyway/secret.key", h) < (int)n ? 0 : -1;
}

int cli_load_key(cli *c, uint8_t sk[KW_SECRET_KEY_LEN], bool *have) {
  *have = false;
  if (c->ephemeral)
    return 0;
  char path[4096];
  const char *p = c->key_file;
  if (!p) {
    if (default_key_path(path, sizeof path) != 0)
      return cli_fail(c, KW_ERR_KEYFILE,
                      "no key file location: set HOME or XDG_CONFIG_HOME, or "
                      "pass --key FILE or --ephemeral");
    p = path;
  }
  errno = 0;
  kw_err e = kw_keyfile_read(p, sk);
  if (e == KW_ERR_KEYFILE && errno == ENOENT) {
    if (kw_key_generate(sk) != KW_OK)
      return cli_fail(c, KW_ERR_NOMEM, "cannot generate a key");
    e = kw_keyfile_write(p, sk);
    if (e != KW_OK)
      return cli_fail(c, e, "key file %s: cannot create it: %s", p,
                      errno ? strerror(errno) : kw_strerror(e));
    if (c->verbosity > 0)
      cli_info(c, "created key file %s", p);
  } else if (e == KW_ERR_KEYFILE_PERM) {
    return cli_fail(c, e,
                    "key file %s is readable by group or others; fix it with "
                    "'chmod 600 %s'",
                    p, p);
  } else if (e != KW_OK) {
    return cli_fail(c, e, "key file %s: %s%s%s", p, kw_strerror(e),
                    errno ? ": " : "", errno ? strerror(errno) : "");
  }
  *have = true;
  return 0;
}

/* ---- the endpoint
 * ------------------------------------------------------------ */

static const char *level_name(kw_log_level l) {
  static const char *n[] = {"error", "warn", "info", "debug", "trace"};
  return (unsigned)l < 5 ? n[l] : "info";
}

static int relay_slot(cli *c, const char *url) {
  for (int i = 0; i < c->n_relays; i++)
    if (!strcmp(c->relays[i], url))
      return i;
  return -1;
}

/* The library's relay.* log lines: remember why a relay failed; say it at
 * the default verbosity the first time its certificate is not trusted. */
static void note_relay(cli *c, const char *msg) {
  char url[KW_MAX_RELAY_URL + 1] = "", reason[32] = "";
  const char *u = strstr(msg, "url="), *r = strstr(msg, "reason=");
  if (u)
    sscanf(u + 4, "%255s", url);
  if (r)
    sscanf(r + 7, "%31s", reason);
  int i = relay_slot(c, url);
  if (i < 0)
    return;
  const char *why = "";
  if (!strncmp(msg, "relay.resolve_failed", 20))
    why = "resolve";
  else if (!strncmp(msg, "relay.connect_failed", 20))
    why = !strcmp(reason, "CERT") || !strcmp(reason, "TLS") ? "certificate"
          : !strcmp(reason, "IO")                           ? "refused"
                                                            : "io";
  pthread_mutex_lock(&c->mu);
  bool first = strcmp(c->relay_why[i], why) != 0;
  snprintf(c->relay_why[i], sizeof c->relay_why[i], "%s", why);
  pthread_mutex_unlock(&c->mu);
  if (first && !strcmp(why, "certificate") && strcmp(c->cmd, "netcheck")) {
    const char *k;
    const char *text = cli_relay_why(c, url, &k);
    if (c->json)
      emit_json(json_pack("{s:s, s:s, s:s, s:s}", "event", "relay_error", "url",
                          url, "reason", k, "message", text));
    else if (c->verbosity >= 0)
      fprintf(stderr, "keyway: relay %s: %s\n", url, text);
  }
}

const char *cli_relay_why(cli *c, const char *url, const char **kind) {
  int i = relay_slot(c, url);
  char why[16] = "";
  if (i >= 0) {
    pthread_mutex_lock(&c->mu);
    snprintf(why, sizeof why, "%s", c->relay_why[i]);
    pthread_mutex_unlock(&c->mu);
  }
  *kind = "timeout";
  if (!strcmp(why, "certificate")) {
    *kind = "certificate";
    return c->n_relay_cas
               ? "certificate not trusted (not signed by the --relay-ca "
                 "given)"
               : "certificate not trusted (pass --relay-ca FILE with the "
                 "relay's certificate)";
  }
  if (!strcmp(why, "refused")) {
    *kind = "refused";
    return "TCP connection refused or unreachable";
  }
  if (!strcmp(why, "resolve")) {
    *kind = "resolve";
    return "host name not resolved";
  }
  if (!strcmp(why, "io")) {
    *kind = "io";
    return "the connection failed";
  }
  return NULL;
}

static void on_log(void *user, kw_log_level lvl, const char *module,
                   const char *msg) {
  cli *c = user;
  const char *km = strstr(msg, "tls.key_mismatch ");
  if (km) {
    char pres[64] = "", exp[64] = "";
    const char *p = strstr(msg, "presented="), *e = strstr(msg, "expected=");
    if (p)
      sscanf(p + 10, "%63s", pres);
    if (e)
      sscanf(e + 9, "%63s", exp);
    pthread_mutex_lock(&c->mu);
    snprintf(c->mismatch, sizeof c->mismatch,
             "remote presented key %s, expected %s", pres, exp);
    pthread_mutex_unlock(&c->mu);
  }
  if (!strncmp(msg, "relay.connect_failed ", 21) ||
      !strncmp(msg, "relay.resolve_failed ", 21) ||
      !strncmp(msg, "relay.connected ", 16))
    note_relay(c, msg);
  int want = c->verbosity >= 2 ? KW_LOG_DEBUG : KW_LOG_INFO;
  if (c->verbosity < 1 || (int)lvl > want)
    return;
  if (c->json)
    emit_json(json_pack("{s:s, s:s, s:s, s:s}", "event", "log", "level",
                        level_name(lvl), "module", module, "msg", msg));
  else
    fprintf(stderr, "[%s] %s\n", module, msg);
}

/* SIGINT/SIGTERM end the run. A command with an interrupt hook gets it
 * run on the loop thread first (it closes its connections with
 * CLI_CODE_INTERRUPTED, so the peer learns at once that this side
 * stopped) and exits with c->interrupt_exit (130, as shells expect);
 * without one, listen and send stop serving (exit 0) and the others give
 * up (exit 130). A second signal ends the run at once. */
static void run_interrupt_hook(kw_endpoint *ep, void *arg) {
  (void)ep;
  cli *c = arg;
  c->interrupt_hook(c);
  pthread_mutex_lock(&c->mu);
  c->hook_done = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void *signal_thread(void *arg) {
  cli *c = arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig;
  if (sigwait(&set, &sig) != 0)
    return NULL;
  pthread_mutex_lock(&c->mu);
  c->interrupted = true;
  pthread_mutex_unlock(&c->mu);
  if (c->interrupt_hook) {
    if (cli_post(c, run_interrupt_hook, c) == KW_OK) {
      struct timespec dl;
      clock_gettime(CLOCK_REALTIME, &dl);
      dl.tv_sec += 2;
      pthread_mutex_lock(&c->mu);
      while (!c->hook_done && !c->finished)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0)
          break;
      c->hook_done = false; /* the exit hook uses it too */
      pthread_mutex_unlock(&c->mu);
    }
    /* read after the hook: it may choose (ping: 0 when replies came) */
    cli_done(c, c->interrupt_exit);
  } else {
    bool serving = !strcmp(c->cmd, "listen") || !strcmp(c->cmd, "send");
    if (!serving)
      cli_fail(c, KW_ERR_CLOSED, "%s: interrupted", c->cmd);
    cli_done(c, serving ? 0 : 130); /* 130: as shells expect */
  }
  if (sigwait(&set, &sig) == 0)
    _exit(130); /* a second Ctrl-C: now */
  return NULL;
}

static void start_signals(cli *c) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  /* blocked in every thread created from here on; one thread waits */
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_t th;
  if (pthread_create(&th, NULL, signal_thread, c) == 0)
    pthread_detach(th);
}

static cli *tmp_owner;
static void remove_tmp_ca(void) {
  if (tmp_owner && tmp_owner->relay_ca_tmp[0])
    unlink(tmp_owner->relay_ca_tmp);
}

/* Several --relay-ca: one PEM file holding them all, removed at exit.
 * NULL on failure (the reason in c->mismatch). */
static const char *join_cas(cli *c) {
  const char *dir = getenv("XDG_RUNTIME_DIR");
  if (!dir || !*dir || access(dir, W_OK) != 0)
    dir = getenv("TMPDIR");
  if (!dir || !*dir)
    dir = "/tmp";
  snprintf(c->relay_ca_tmp, sizeof c->relay_ca_tmp, "%s/keyway-ca.XXXXXX", dir);
  int fd = mkstemp(c->relay_ca_tmp);
  if (fd < 0) {
    snprintf(c->mismatch, sizeof c->mismatch, "%.200s: %s", c->relay_ca_tmp,
             strerror(errno));
    c->relay_ca_tmp[0] = 0;
    return NULL;
  }
  tmp_owner = c;
  atexit(remove_tmp_ca);
  for (int i = 0; i < c->n_relay_cas; i++) {
    FILE *f = fopen(c->relay_cas[i], "rb");
    if (!f) {
      snprintf(c->mismatch, sizeof c->mismatch, "%.200s: %s", c->relay_cas[i],
               strerror(errno));
      close(fd);
      return NULL;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
      if (write(fd, buf, n) != (ssize_t)n)
        break;
    if (write(fd, "\n", 1) != 1) {
      /* ignored: a short file fails later, at the TLS set-up */
    }
    fclose(f);
  }
  close(fd);
  return c->relay_ca_tmp;
}

int cli_start_endpoint(cli *c, const char *const *alpns,
                       const kw_callbacks *cbs, void *user) {
  uint8_t sk[KW_SECRET_KEY_LEN];
  bool have = false;
  int rc = cli_load_key(c, sk, &have);
  if (rc)
    return rc;
  kw_config *cfg;
  if (kw_config_new(&cfg) != KW_OK)
    return cli_fail(c, KW_ERR_NOMEM, "out of memory");
  if (have)
    kw_config_set_secret_key(cfg, sk);
  memset(sk, 0, sizeof sk);
  for (int i = 0; alpns && alpns[i]; i++)
    kw_config_add_alpn(cfg, alpns[i]);
  int fams = 0;
  for (int i = 0; i < c->n_binds; i++) {
    kw_sockaddr a;
    if (kw_sockaddr_parse(c->binds[i], &a) != KW_OK) {
      kw_config_free(cfg);
      return cli_usage_error(c, "--bind %s: not ADDR:PORT", c->binds[i]);
    }
    kw_config_add_bind(cfg, &a);
    fams |= a.family == 4 ? 1 : 2;
  }
  /* --bind of one family only: the other stays off (no stray addresses) */
  if (fams == 1 || fams == 2)
    kw_config_set_families(cfg, fams == 1, fams == 2);
  static const char *const cand_flag[] = {"--allow-iface", "--deny-iface",
                                          "--allow-prefix", "--deny-prefix"};
  for (int i = 0; i < c->n_cand; i++) {
    const char *arg = c->cand[i].arg;
    kw_err e;
    switch (c->cand[i].kind) {
    case 0:
      e = kw_config_allow_interface(cfg, arg);
      break;
    case 1:
      e = kw_config_deny_interface(cfg, arg);
      break;
    case 2:
      e = kw_config_allow_prefix(cfg, arg);
      break;
    default:
      e = kw_config_deny_prefix(cfg, arg);
      break;
    }
    if (e != KW_OK) {
      kw_config_free(cfg);
      return cli_usage_error(c, "%s %s: %s", cand_flag[c->cand[i].kind], arg,
                             kw_strerror(e));
    }
  }
  if (!c->no_relay) {
    for (int i = 0; i < c->n_relays; i++) {
      if (kw_config_add_relay(cfg, c->relays[i]) != KW_OK) {
        kw_config_free(cfg);
        return cli_usage_error(c, "--relay %s: not https://HOST:PORT",
                               c->relays[i]);
      }
    }
    const char *ca = c->n_relay_cas ? c->relay_cas[0] : NULL;
    if (c->n_relay_cas > 1) {
      ca = join_cas(c);
      if (!ca) {
        kw_config_free(cfg);
        return cli_fail(c, KW_ERR_IO, "--relay-ca: %s", c->mismatch);
      }
    }
    if (ca && kw_config_set_relay_ca(cfg, ca) != KW_OK) {
      kw_config_free(cfg);
      return cli_usage_error(c, "--relay-ca %s: path too long", ca);
    }
  }
  kw_config_set_path_policy(cfg, c->relay_only    ? KW_PATH_POLICY_RELAY_ONLY
                                 : c->direct_only ? KW_PATH_POLICY_DIRECT_ONLY
                                                  : KW_PATH_POLICY_ANY);
  if (c->cc)
    kw_config_set_congestion_control(cfg, c->cc == CLI_CC_BBR     ? KW_CC_BBR
                                          : c->cc == CLI_CC_CUBIC ? KW_CC_CUBIC
                                                                  : KW_CC_RENO);
  kw_config_set_port_mapping(cfg, c->portmap);
  kw_config_set_dht_publish(cfg, (kw_dht_publish)c->dht_publish);
  kw_config_set_lan_discovery(cfg, c->lan);
  kw_config_set_birthday_probing(cfg, !c->no_birthday);
  uint32_t tmo = (uint32_t)(c->timeout_s * 1000);
  kw_config_set_connect_timeout(cfg, tmo ? tmo : 10000);
  kw_config_set_keepalive(cfg, 5000);
  if (c->max_conns)
    kw_config_set_max_conns(cfg, c->max_conns);
  kw_config_set_log(cfg, on_log, c,
                    c->verbosity >= 2 ? KW_LOG_DEBUG : KW_LOG_INFO);
  kw_config_set_callbacks(cfg, cbs, user);
  start_signals(c);
  kw_err e = kw_endpoint_new(cfg, &c->ep);
  kw_config_free(cfg);
  if (e != KW_OK)
    return cli_fail(c, e, "cannot start the endpoint: %s", kw_strerror(e));
  kw_endpoint_id(c->ep, c->id);
  c->t_start = cli_now();
  e = kw_endpoint_start(c->ep);
  if (e != KW_OK)
    return cli_fail(c, e, "cannot start the endpoint: %s", kw_strerror(e));
  return 0;
}

int cli_parse_target(cli *c, const char *s, kw_endpoint_addr *a) {
  memset(a, 0, sizeof *a);
  if (strncasecmp(s, "kw1", 3) == 0) {
    const char *why = NULL;
    if (kw_ticket_decode(s, a, &why) != KW_OK)
      return cli_usage_error(c, "malformed ticket: %s", why ? why : "invalid");
    return 0;
  }
  if (kw_id_from_string(s, a->id) == KW_OK)
    return 0;
  return cli_usage_error(c,
                         "'%s' is neither a ticket (kw1...) nor an endpoint id "
                         "(52 base32 characters)",
                         s);
}

/* ---- events
 * --------------------------------------------------------------------- */

static int write_atomic(const char *path, const char *text, mode_t mode) {
  char tmp[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path) >= (int)sizeof tmp)
    return -1;
  int fd = mkstemp(tmp);
  if (fd < 0)
    return -1;
  size_t n = strlen(text);
  bool ok = write(fd, text, n) == (ssize_t)n && fchmod(fd, mode) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

int cli_emit_ticket(cli *c) {
  /* with relays, wait (a little) for the home relay so the ticket names it
   * and the reflexive address is known */
  if (c->n_relays && !c->no_relay) {
    char url[KW_MAX_RELAY_URL + 1] = "";
    for (int i = 0; i < 300 && !url[0]; i++) {
      kw_endpoint_home_relay(c->ep, url, sizeof url);
      if (!url[0])
        usleep(10000);
    }
    if (!url[0])
      cli_info(c, "no relay answered yet: the ticket holds direct addresses "
                  "only");
    usleep(50000); /* the first STUN answer follows the home choice */
  }
  kw_endpoint_addr a;
  char t[KW_TICKET_MAX];
  kw_err e = kw_endpoint_get_addr(c->ep, &a);
  if (e == KW_OK) {
    switch (c->ticket_type) {
    case CLI_TICKET_ID:
      a.relay_url[0] = 0;
      a.n_addrs = 0;
      if ((!c->n_relays || c->no_relay) && !c->lan)
        cli_info(c, "warning: an id-only ticket is dialed through a relay's "
                    "lookup or the LAN; this endpoint has neither (pass "
                    "--relay or --lan)");
      break;
    case CLI_TICKET_RELAY:
      a.n_addrs = 0;
      if (!a.relay_url[0])
        cli_info(c, "warning: no home relay: the ticket holds only the id");
      break;
    case CLI_TICKET_ADDRESSES:
      a.relay_url[0] = 0;
      break;
    case CLI_TICKET_FULL:
      break;
    }
    if (c->relay_only && !a.relay_url[0] && c->ticket_type != CLI_TICKET_ID)
      cli_info(c, "warning: --relay-only and no relay answered yet: this "
                  "ticket names no way to reach this endpoint");
  }
  if (e == KW_OK)
    e = kw_ticket_encode_token(&a, c->ticket_token, c->ticket_token_len, t,
                               sizeof t);
  if (e != KW_OK)
    return cli_fail(c, e, "cannot make a ticket: %s", kw_strerror(e));
  if (c->json)
    emit_json(json_pack("{s:s, s:s}", "event", "ticket", "ticket", t));
  else
    fprintf(stderr, "ticket: %s\n", t);
  if (c->ticket_file) {
    char line[KW_TICKET_MAX + 2];
    snprintf(line, sizeof line, "%s\n", t);
    /* a ticket with a capability is a secret: owner only */
    if (write_atomic(c->ticket_file, line, c->ticket_token_len ? 0600 : 0644) !=
        0)
      return cli_fail(c, KW_ERR_IO, "--ticket-file %s: %s", c->ticket_file,
                      strerror(errno));
  }
  return 0;
}

void cli_emit_connected(cli *c, kw_conn *conn) {
  uint8_t id[KW_ID_LEN];
  char idt[KW_ID_STRLEN + 1];
  kw_conn_remote_id(conn, id);
  cli_id(id, idt);
  pthread_mutex_lock(&c->mu);
  c->path_known = false; /* a new connection: its first path is news */
  pthread_mutex_unlock(&c->mu);
  if (c->json)
    emit_json(json_pack("{s:s, s:s, s:s}", "event", "connected", "remote", idt,
                        "alpn", kw_conn_alpn(conn)));
  else if (c->verbosity >= 0)
    fprintf(stderr, "connected: %s (%s)\n", idt, kw_conn_alpn(conn));
}

void cli_emit_path(cli *c, kw_conn *conn, const kw_path_info *p) {
  uint8_t id[KW_ID_LEN];
  char idt[KW_ID_STRLEN + 1], addr[KW_SOCKADDR_STRLEN] = "";
  kw_conn_remote_id(conn, id);
  cli_id(id, idt);
  if (p->addr.family)
    kw_sockaddr_format(&p->addr, addr, sizeof addr);
  pthread_mutex_lock(&c->mu);
  bool same = c->path_known && c->path.kind == p->kind &&
              c->path.addr.family == p->addr.family &&
              c->path.addr.port == p->addr.port &&
              memcmp(c->path.addr.ip, p->addr.ip, 16) == 0;
  c->path = *p;
  c->path_known = true;
  pthread_mutex_unlock(&c->mu);
  if (same)
    return; /* one event per change */
  if (c->json) {
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s}", "event", "path", "remote", idt,
                  "kind", kw_path_kind_name(p->kind), "addr", addr);
    json_object_set_new(o, "rtt_ms", json_real(p->rtt_ms));
    emit_json(o);
  } else if (c->verbosity >= 0) {
    fprintf(stderr, "path: %s%s%s rtt %.2f ms\n", kw_path_kind_name(p->kind),
            addr[0] ? " " : "", addr, p->rtt_ms);
  }
}

void cli_emit_stats(cli *c, uint64_t sent, uint64_t received) {
  if (!c->json)
    return;
  kw_endpoint_stats st;
  memset(&st, 0, sizeof st);
  if (c->ep)
    kw_endpoint_stats_get(c->ep, &st);
  pthread_mutex_lock(&c->mu);
  const char *kind = c->path_known ? kw_path_kind_name(c->path.kind) : "none";
  pthread_mutex_unlock(&c->mu);
  json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:I, s:I}", "event", "stats",
                        "bytes_sent", (json_int_t)sent, "bytes_received",
                        (json_int_t)received, "path", kind,
                        "holepunch_attempts", (json_int_t)st.holepunch_attempts,
                        "path_migrations", (json_int_t)st.path_migrations);
  json_object_set_new(o, "seconds", json_real(cli_now() - c->t_start));
  emit_json(o);
}

void cli_emit_summary(cli *c, const char *verb, const uint8_t id[KW_ID_LEN],
                      kw_path_kind kind, uint64_t bytes, double secs) {
  char idt[KW_ID_STRLEN + 1];
  cli_id(id, idt);
  bool sent = strcmp(verb, "sent") == 0;
  double mbps = secs > 0 ? (double)bytes / secs / 1e6 : 0.0;
  if (c->json) {
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:s}", "event", verb, "remote", idt, "bytes",
                  (json_int_t)bytes, "path", kw_path_kind_name(kind));
    json_object_set_new(o, "seconds", json_real(secs));
    json_object_set_new(o, "mb_per_s", json_real(mbps));
    emit_json(o);
  } else if (c->verbosity >= 0) {
    fprintf(stderr, "%s %llu bytes in %.2f s (%.1f MB/s) %s%.10s%spath=%s\n",
            verb, (unsigned long long)bytes, secs, mbps, sent ? "to " : "",
            sent ? idt : "", sent ? " " : "", kw_path_kind_name(kind));
  }
}

/* ---- completion
 * ------------------------------------------------------------------- */

void cli_done(cli *c, int code) {
  pthread_mutex_lock(&c->mu);
  if (!c->finished) {
    c->finished = true;
    c->exit_code = code;
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
}

static void run_exit_hook(kw_endpoint *ep, void *arg) {
  (void)ep;
  cli *c = arg;
  c->exit_hook(c);
  pthread_mutex_lock(&c->mu);
  c->hook_done = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

int cli_wait(cli *c) {
  pthread_mutex_lock(&c->mu);
  while (!c->finished)
    pthread_cond_wait(&c->cv, &c->mu);
  int code = c->exit_code;
  pthread_mutex_unlock(&c->mu);
  if (c->ep && c->exit_hook &&
      kw_endpoint_post(c->ep, run_exit_hook, c) == KW_OK) {
    /* bounded: the loop may be stuck in a blocking write to stdout */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 2;
    pthread_mutex_lock(&c->mu);
    while (!c->hook_done)
      if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0)
        break;
    pthread_mutex_unlock(&c->mu);
  }
  pthread_mutex_lock(&c->mu);
  c->posts_closed = true;
  pthread_mutex_unlock(&c->mu);
  if (c->ep) {
    kw_endpoint_close(c->ep);
    kw_endpoint_free(c->ep);
    c->ep = NULL;
  }
  return code;
}

kw_err cli_post(cli *c, void (*fn)(kw_endpoint *, void *), void *arg) {
  /* mu is held across the post: kw_endpoint_post only queues and wakes
   * the loop, and cli_wait takes mu before it closes the endpoint */
  pthread_mutex_lock(&c->mu);
  kw_err e = c->posts_closed || !c->ep ? KW_ERR_CLOSED
                                       : kw_endpoint_post(c->ep, fn, arg);
  pthread_mutex_unlock(&c->mu);
  return e;
}
