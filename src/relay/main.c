/* SPDX-License-Identifier: MIT */
/*
 * keyway-relay: flags, signals, start and stop of the modules.
 * Exit status: 0 after a graceful stop (SIGINT/SIGTERM), 1 when start-up
 * fails, 2 on a usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <netdb.h>
#include <sodium.h>
#include <sys/socket.h>

#include "relay/relay.h"

#include "net/clock.h"
#include "net/osaddr.h"
#include "net/tls_cred.h"
#include "net/tls_stream.h"

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: keyway-relay [options]\n"
      "\n"
      "The keyway relay: forwards sealed packets between endpoints that "
      "cannot\n"
      "reach each other directly, answers STUN, stores signed address "
      "records.\n"
      "\n"
      "  --listen ADDR:PORT         TLS relay + HTTPS (required; e.g. %s)\n"
      "  --stun-listen ADDR:PORT    STUN over UDP (default %s; \"off\" to "
      "disable)\n"
      "  --tls-cert FILE --tls-key FILE\n"
      "                             PEM certificate chain and key\n"
      "  --cert-out FILE            without --tls-cert: write the generated\n"
      "                             self-signed certificate here (clients "
      "pass\n"
      "                             it as --relay-ca)\n"
      "  --state-dir DIR            without --tls-cert: keep the self-signed\n"
      "                             certificate and key here across restarts\n"
      "                             (default $STATE_DIRECTORY, else\n"
      "                             /var/lib/keyway-relay as root, else\n"
      "                             $XDG_STATE_HOME/keyway-relay)\n"
      "  --allow FILE               only these endpoint ids may connect (one "
      "per\n"
      "                             line, '#' comments); SIGHUP re-reads it\n"
      "  --metrics-listen ADDR:PORT Prometheus text on plain HTTP (default "
      "off)\n"
      "  --max-clients N            authenticated clients at once (default "
      "%u)\n"
      "  --max-pending N            connections not authenticated yet (TLS,\n"
      "                             HTTP, upgrade) at once (default %u); each\n"
      "                             must upgrade and authenticate within 10 s\n"
      "                             of accept, or finish an HTTP request\n"
      "                             within 10 s (absolute deadlines); none\n"
      "                             lives past 30 s unauthenticated\n"
      "  --rate BYTES_PER_SEC       per-client send rate, 0 = unlimited\n"
      "                             (default %llu = 100 MiB/s: what one\n"
      "                             sender may cost the relay, so a flooder\n"
      "                             leaves room for the others)\n"
      "  --max-records N            lookup store size (default %u); records\n"
      "                             of connected clients are never evicted,\n"
      "                             others oldest first; timestamps at most\n"
      "                             30 s ahead of the relay's clock\n"
      "  --lookup-rate N            lookup PUTs per second per source address\n"
      "                             (IPv6: per /64), burst 5 s worth, 0 = no\n"
      "                             limit (default %u); and per connection\n"
      "                             1/s, burst 10; beyond: 429\n"
      "  --allow-v1-auth            also accept relay protocol version 1\n"
      "                             logins (the signature is not bound to the\n"
      "                             TLS session: a relay the client trusts\n"
      "                             could replay it); default: refused (426)\n"
      "  --dht-listen ADDR:PORT     join the Mainline DHT on this UDP socket:\n"
      "                             put the records clients publish (PUT\n"
      "                             /pkarr/<id>), answer lookup misses from\n"
      "                             the DHT (default: off, no DHT traffic)\n"
      "  --dht-bootstrap HOST:PORT  a DHT node to join through (repeatable,\n"
      "                             up to %d; e.g. router.bittorrent.com:6881)\n"
      "  --dht-cache-ttl SECONDS    serve a record read from the DHT at most\n"
      "                             this long before asking again (default 0:\n"
      "                             until the record itself expires)\n"
      "  --json                     one JSON object per log line on stderr\n"
      "  -v, --verbose / -q, --quiet\n"
      "  -h, --help\n"
      "  --version\n"
      "\nSee keyway-relay(8).\n",
      KW_RS_DEFAULT_LISTEN, KW_RS_DEFAULT_STUN, KW_RS_DEFAULT_MAX_CLIENTS,
      KW_RS_DEFAULT_MAX_PENDING, (unsigned long long)KW_RS_DEFAULT_RATE,
      KW_RS_LOOKUP_MAX_RECORDS, KW_RS_DEFAULT_PUT_RATE, KW_RS_DHT_MAX_BOOT);
}

/* HOST:PORT or an IP literal; a name is resolved once, at start-up. */
static int boot_flag(const char *v, kw__rs_cfg *cfg) {
  if (!v) {
    fprintf(stderr, "keyway-relay: --dht-bootstrap needs HOST:PORT\n");
    return 2;
  }
  if (cfg->n_dht_boot == KW_RS_DHT_MAX_BOOT) {
    fprintf(stderr, "keyway-relay: at most %d --dht-bootstrap\n",
            KW_RS_DHT_MAX_BOOT);
    return 2;
  }
  kw_sockaddr *a = &cfg->dht_boot[cfg->n_dht_boot];
  if (kw_sockaddr_parse(v, a) != KW_OK) {
    const char *colon = strrchr(v, ':');
    char host[256];
    if (!colon || colon == v || (size_t)(colon - v) >= sizeof host) {
      fprintf(stderr, "keyway-relay: --dht-bootstrap: not HOST:PORT: %s\n", v);
      return 2;
    }
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET; /* compact DHT nodes are IPv4 */
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res) {
      fprintf(stderr, "keyway-relay: --dht-bootstrap: cannot resolve %s\n", v);
      return 2;
    }
    kw__sockaddr_from_os(res->ai_addr, a);
    freeaddrinfo(res);
  }
  if (a->family != 4 || a->port == 0) {
    fprintf(stderr, "keyway-relay: --dht-bootstrap: IPv4 HOST:PORT only\n");
    return 2;
  }
  cfg->n_dht_boot++;
  return 0;
}

uint64_t kw__rs_now_ns(void) { return kw__mono_ns(); }

uint64_t kw__rs_unix_ms(void) { return kw__unix_us() / 1000u; }

static bool parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s)
    return false;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9')
      return false;
    if (v > (UINT64_MAX - 9) / 10)
      return false;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  *out = v;
  return true;
}

static int cmp_id(const void *a, const void *b) {
  return memcmp(a, b, KW_ID_LEN);
}

/* Reads the allowlist: one id per line, blank lines and '#' comments
 * ignored. Prints the first bad line. */
static kw_err load_allow(const char *path, uint8_t (**out)[KW_ID_LEN],
                         size_t *n) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "keyway-relay: cannot read %s: %s\n", path,
            strerror(errno));
    return KW_ERR_IO;
  }
  uint8_t(*ids)[KW_ID_LEN] = NULL;
  size_t cnt = 0, cap = 0;
  char line[512];
  unsigned lineno = 0;
  kw_err err = KW_OK;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *h = strchr(line, '#');
    if (h)
      *h = 0;
    char *s = line;
    while (*s == ' ' || *s == '\t')
      s++;
    char *e = s + strlen(s);
    while (e > s &&
           (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
      *--e = 0;
    if (!*s)
      continue;
    if (cnt == cap) {
      size_t nc = cap ? cap * 2 : 64;
      void *np = realloc(ids, nc * KW_ID_LEN);
      if (!np) {
        err = KW_ERR_NOMEM;
        break;
      }
      ids = np;
      cap = nc;
    }
    if (kw_id_from_string(s, ids[cnt]) != KW_OK) {
      fprintf(stderr, "keyway-relay: %s:%u: not an endpoint id\n", path,
              lineno);
      err = KW_ERR_BAD_ID;
      break;
    }
    cnt++;
  }
  fclose(f);
  if (err != KW_OK) {
    free(ids);
    return err;
  }
  qsort(ids, cnt, KW_ID_LEN, cmp_id);
  if (!ids) {
    /* an empty allowlist admits nobody: keep a non-NULL array */
    ids = malloc(KW_ID_LEN);
    if (!ids)
      return KW_ERR_NOMEM;
  }
  *out = ids;
  *n = cnt;
  return KW_OK;
}

typedef struct app {
  kw__rs rs;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t kill;
  bool kill_open;
} app;

static void kill_cb(uv_timer_t *t) {
  app *a = t->data;
  kw__rs_server_kill(&a->rs);
  uv_close((uv_handle_t *)t, NULL);
  a->kill_open = false;
}

static void stop(app *a, const char *why) {
  kw__rs *rs = &a->rs;
  if (rs->stopping)
    return;
  rs->stopping = true;
  kw__rs_log(rs, KW_RS_INFO, "relay.stopping", "signal=%s clients=%llu", why,
             (unsigned long long)rs->m.clients);
  kw__rs_server_stop(rs);
  kw__rs_stun_stop(rs);
  kw__rs_metrics_stop(rs);
  kw__rs_lookup_stop(rs);
  kw__rs_dht_stop(rs);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sighup, NULL);
  uv_timer_init(&a->loop, &a->kill);
  a->kill.data = a;
  a->kill_open = true;
  uv_timer_start(&a->kill, kill_cb, KW_RS_STOP_MS, 0);
  uv_unref((uv_handle_t *)&a->kill); /* does not keep the loop alive */
}

static void on_signal(uv_signal_t *h, int signum) {
  app *a = h->data;
  kw__rs *rs = &a->rs;
  if (signum == SIGHUP) {
    if (!rs->cfg.allow_file)
      return;
    uint8_t(*ids)[KW_ID_LEN] = NULL;
    size_t n = 0;
    if (load_allow(rs->cfg.allow_file, &ids, &n) != KW_OK) {
      kw__rs_log(rs, KW_RS_WARN, "allowlist.reload_failed", "file=%s",
                 rs->cfg.allow_file);
      return;
    }
    free(rs->allow);
    rs->allow = ids;
    rs->n_allow = n;
    size_t dropped = kw__rs_server_recheck_allow(rs);
    kw__rs_log(rs, KW_RS_INFO, "allowlist.reloaded", "ids=%zu disconnected=%zu",
               n, dropped);
    return;
  }
  stop(a, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static int addr_flag(const char *name, const char *v, kw_sockaddr *out) {
  if (!v) {
    fprintf(stderr, "keyway-relay: %s needs a value\n", name);
    return 2;
  }
  if (kw_sockaddr_parse(v, out) != KW_OK) {
    fprintf(stderr, "keyway-relay: %s: not an ADDR:PORT: %s\n", name, v);
    return 2;
  }
  return 0;
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* The self-signed identity, kept in a state directory (0700) so that
 * clients holding its certificate keep working across restarts. */
static char g_state_cert[4200];
static int g_state_reused;

static int mkdirs(const char *dir) {
  char p[4096];
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
    return -1;
  for (char *q = p + 1; *q; q++) {
    if (*q != '/')
      continue;
    *q = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
      return -1;
    *q = '/';
  }
  if (mkdir(p, 0700) != 0 && errno != EEXIST)
    return -1;
  return 0;
}

static kw_err keep_selfsigned(kw__rs_cfg *cfg, const char *dir, void **cred) {
  char def[4096];
  if (!dir) {
    const char *sd = getenv("STATE_DIRECTORY"); /* systemd StateDirectory= */
    const char *x = getenv("XDG_STATE_HOME"), *h = getenv("HOME");
    if (sd && *sd) {
      snprintf(def, sizeof def, "%s", sd);
      char *colon = strchr(def, ':'); /* several: the first */
      if (colon)
        *colon = 0;
    } else if (geteuid() == 0) {
      snprintf(def, sizeof def, "/var/lib/keyway-relay");
    } else if (x && *x) {
      snprintf(def, sizeof def, "%s/keyway-relay", x);
    } else if (h && *h) {
      snprintf(def, sizeof def, "%s/.local/state/keyway-relay", h);
    } else {
      fprintf(stderr, "keyway-relay: no state directory: pass --state-dir "
                      "DIR or --tls-cert/--tls-key\n");
      return KW_ERR_INVALID_ARG;
    }
    dir = def;
  }
  struct stat st;
  if (mkdirs(dir) != 0 || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "keyway-relay: state directory %s: %s\n", dir,
            strerror(errno ? errno : ENOTDIR));
    return KW_ERR_IO;
  }
  if (st.st_mode & 077)
    (void)chmod(dir, 0700); /* it holds a private key */
  char key[4200], lock[4200];
  snprintf(g_state_cert, sizeof g_state_cert, "%s/relay-cert.pem", dir);
  snprintf(key, sizeof key, "%s/relay-key.pem", dir);
  snprintf(lock, sizeof lock, "%s/.lock", dir);
  /* two relays starting at once on one state directory: one generates */
  int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lfd >= 0)
    (void)flock(lfd, LOCK_EX);
  bool reused = false;
  kw_err e = kw__tls_cred_server_selfsigned_keep(&cfg->listen, g_state_cert,
                                                 key, &reused, cred);
  g_state_reused = reused;
  if (lfd >= 0)
    close(lfd);
  if (e != KW_OK) {
    fprintf(stderr, "keyway-relay: certificate in %s: %s\n", dir,
            kw_strerror(e));
    return e;
  }
  if (cfg->cert_out) { /* a copy where the operator asked */
    FILE *in = fopen(g_state_cert, "rb");
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp%u", cfg->cert_out, (unsigned)getpid());
    FILE *out = in ? fopen(tmp, "wb") : NULL;
    bool ok = in && out;
    char buf[4096];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
      ok = fwrite(buf, 1, n, out) == n;
    if (out)
      ok = fclose(out) == 0 && ok;
    if (in)
      fclose(in);
    if (!ok || rename(tmp, cfg->cert_out) != 0) {
      unlink(tmp);
      fprintf(stderr, "keyway-relay: --cert-out %s: %s\n", cfg->cert_out,
              strerror(errno));
      return KW_ERR_IO;
    }
  }
  return KW_OK;
}

/* The URL clients pass as --relay: the bound address (the host's name when
 * bound to every interface) and ?stun=PORT when STUN is not on UDP 3478 of
 * the same IP. */
static void log_client_url(kw__rs *rs) {
  const kw__rs_cfg *cfg = &rs->cfg;
  char a[KW_SOCKADDR_STRLEN], host[256] = "";
  kw_sockaddr_format(&cfg->listen, a, sizeof a);
  static const uint8_t zero[16];
  bool any = memcmp(cfg->listen.ip, zero, cfg->listen.family == 4 ? 4 : 16) == 0;
  if (any && gethostname(host, sizeof host - 1) == 0 && host[0])
    snprintf(a, sizeof a, "%.40s:%u", host, (unsigned)cfg->listen.port);
  char url[320];
  bool same_ip = cfg->stun_listen.family == cfg->listen.family &&
                 memcmp(cfg->stun_listen.ip, cfg->listen.ip, 16) == 0;
  if (cfg->stun_listen.family && (cfg->stun_listen.port != 3478 || !same_ip))
    snprintf(url, sizeof url, "https://%s/?stun=%u", a,
             (unsigned)cfg->stun_listen.port);
  else
    snprintf(url, sizeof url, "https://%s", a);
  kw__rs_log(rs, KW_RS_INFO, "relay.url", "url=%s%s", url,
             cfg->stun_listen.family && !same_ip
                 ? " note=\"STUN listens on another IP: clients reach it at "
                   "the relay's IP\""
                 : "");
}

int main(int argc, char **argv) {
  static app a; /* the whole process state, owned by main */
  kw__rs *rs = &a.rs;
  kw__rs_cfg *cfg = &rs->cfg;
  cfg->max_clients = KW_RS_DEFAULT_MAX_CLIENTS;
  cfg->rate = KW_RS_DEFAULT_RATE;
  cfg->max_records = KW_RS_LOOKUP_MAX_RECORDS;
  cfg->max_pending = KW_RS_DEFAULT_MAX_PENDING;
  cfg->lookup_rate = KW_RS_DEFAULT_PUT_RATE;
  kw_sockaddr_parse(KW_RS_DEFAULT_LISTEN, &cfg->listen);
  kw_sockaddr_parse(KW_RS_DEFAULT_STUN, &cfg->stun_listen);

  bool listen_given = false;
  const char *state_dir = NULL;
  for (int i = 1; i < argc; i++) {
    const char *f = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rc = 0;
    uint64_t u;
    if (strcmp(f, "-h") == 0 || strcmp(f, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(f, "--version") == 0) {
      printf("keyway-relay %s\n", kw_version_string());
      return 0;
    } else if (strcmp(f, "--listen") == 0) {
      rc = addr_flag(f, v, &cfg->listen);
      listen_given = true;
      i++;
    } else if (strcmp(f, "--stun-listen") == 0) {
      if (v && strcmp(v, "off") == 0)
        memset(&cfg->stun_listen, 0, sizeof cfg->stun_listen);
      else
        rc = addr_flag(f, v, &cfg->stun_listen);
      i++;
    } else if (strcmp(f, "--metrics-listen") == 0) {
      rc = addr_flag(f, v, &cfg->metrics_listen);
      i++;
    } else if (strcmp(f, "--state-dir") == 0) {
      if (!v || !*v) {
        fprintf(stderr, "keyway-relay: --state-dir needs a directory\n");
        return 2;
      }
      state_dir = v;
      i++;
    } else if (strcmp(f, "--tls-cert") == 0 || strcmp(f, "--tls-key") == 0 ||
               strcmp(f, "--cert-out") == 0 || strcmp(f, "--allow") == 0) {
      if (!v || !*v) {
        fprintf(stderr, "keyway-relay: %s needs a file name\n", f);
        return 2;
      }
      if (strcmp(f, "--tls-cert") == 0)
        cfg->tls_cert = v;
      else if (strcmp(f, "--tls-key") == 0)
        cfg->tls_key = v;
      else if (strcmp(f, "--cert-out") == 0)
        cfg->cert_out = v;
      else
        cfg->allow_file = v;
      i++;
    } else if (strcmp(f, "--max-clients") == 0) {
      if (!parse_u64(v, &u) || u == 0 || u > 1000000) {
        fprintf(stderr, "keyway-relay: --max-clients: 1..1000000\n");
        return 2;
      }
      cfg->max_clients = (unsigned)u;
      i++;
    } else if (strcmp(f, "--max-pending") == 0) {
      if (!parse_u64(v, &u) || u == 0 || u > 1000000) {
        fprintf(stderr, "keyway-relay: --max-pending: 1..1000000\n");
        return 2;
      }
      cfg->max_pending = (unsigned)u;
      i++;
    } else if (strcmp(f, "--lookup-rate") == 0) {
      if (!parse_u64(v, &u) || u > 1000000) {
        fprintf(stderr, "keyway-relay: --lookup-rate: 0..1000000\n");
        return 2;
      }
      cfg->lookup_rate = (unsigned)u;
      i++;
    } else if (strcmp(f, "--allow-v1-auth") == 0) {
      cfg->allow_v1_auth = true;
    } else if (strcmp(f, "--rate") == 0) {
      if (!parse_u64(v, &u) || (u != 0 && u < 65536)) {
        fprintf(stderr,
                "keyway-relay: --rate: bytes per second, 0 or >= 65536\n");
        return 2;
      }
      cfg->rate = u;
      i++;
    } else if (strcmp(f, "--max-records") == 0) {
      if (!parse_u64(v, &u) || u == 0 || u > 10000000) {
        fprintf(stderr, "keyway-relay: --max-records: 1..10000000\n");
        return 2;
      }
      cfg->max_records = (size_t)u;
      i++;
    } else if (strcmp(f, "--dht-listen") == 0) {
      rc = addr_flag(f, v, &cfg->dht_listen);
      i++;
    } else if (strcmp(f, "--dht-bootstrap") == 0) {
      rc = boot_flag(v, cfg);
      i++;
    } else if (strcmp(f, "--dht-cache-ttl") == 0) {
      if (!parse_u64(v, &u) || u > 86400) {
        fprintf(stderr, "keyway-relay: --dht-cache-ttl: 0..86400 seconds\n");
        return 2;
      }
      cfg->dht_cache_s = (unsigned)u;
      i++;
    } else if (strcmp(f, "--json") == 0) {
      cfg->json = true;
    } else if (strcmp(f, "-v") == 0 || strcmp(f, "--verbose") == 0) {
      cfg->verbosity = 1;
    } else if (strcmp(f, "-q") == 0 || strcmp(f, "--quiet") == 0) {
      cfg->verbosity = -1;
    } else {
      fprintf(stderr, "keyway-relay: unknown option %s (see --help)\n", f);
      return 2;
    }
    if (rc)
      return rc;
  }
  if (!listen_given) { /* never serve on every interface unasked */
    fprintf(stderr, "keyway-relay: --listen ADDR:PORT is required\n\n");
    usage(stderr);
    return 2;
  }
  if (!cfg->tls_cert != !cfg->tls_key) {
    fprintf(stderr, "keyway-relay: --tls-cert and --tls-key go together\n");
    return 2;
  }
  if (cfg->tls_cert && cfg->cert_out) {
    fprintf(stderr, "keyway-relay: --cert-out is for the generated "
                    "certificate; not with --tls-cert\n");
    return 2;
  }

  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0) {
    fprintf(stderr, "keyway-relay: libsodium failed to start\n");
    return 1;
  }
  raise_nofile();
  rs->started_ns = kw__rs_now_ns();

  if (cfg->allow_file &&
      load_allow(cfg->allow_file, &rs->allow, &rs->n_allow) != KW_OK)
    return 1;

  kw_err e;
  if (cfg->tls_cert) {
    e = kw__tls_cred_server_load(cfg->tls_cert, cfg->tls_key, &rs->cred);
    if (e != KW_OK) {
      fprintf(stderr, "keyway-relay: cannot load %s / %s: %s\n", cfg->tls_cert,
              cfg->tls_key, kw_strerror(e));
      return 1;
    }
  } else {
    e = keep_selfsigned(cfg, state_dir, &rs->cred);
    if (e != KW_OK)
      return 1;
  }

  if (uv_loop_init(&a.loop) != 0) {
    fprintf(stderr, "keyway-relay: event loop failed\n");
    return 1;
  }
  rs->loop = &a.loop;
  if (!cfg->tls_cert)
    kw__rs_log(rs, KW_RS_INFO, "tls.self_signed", "cert=%s reused=%d%s%s",
               g_state_cert, g_state_reused, cfg->cert_out ? " cert_out=" : "",
               cfg->cert_out ? cfg->cert_out : "");
  if (rs->allow)
    kw__rs_log(rs, KW_RS_INFO, "allowlist.loaded", "ids=%zu", rs->n_allow);

  const char *what = "relay";
  e = kw__rs_lookup_init(rs);
  if (e == KW_OK) {
    e = kw__rs_server_start(rs);
    what = "listen";
  }
  if (e == KW_OK) {
    what = "stun-listen";
    e = kw__rs_stun_start(rs);
  }
  if (e == KW_OK) {
    what = "metrics-listen";
    e = kw__rs_metrics_start(rs);
  }
  if (e == KW_OK) {
    what = "dht-listen";
    e = kw__rs_dht_start(rs);
  }
  if (e != KW_OK) {
    kw__rs_log(rs, KW_RS_ERROR, "relay.start_failed", "what=%s error=%s", what,
               kw_errname(e));
    fprintf(stderr, "keyway-relay: cannot start (--%s): %s\n", what,
            kw_strerror(e));
    return 1;
  }
  log_client_url(rs);
  uv_signal_init(&a.loop, &a.sigint);
  uv_signal_init(&a.loop, &a.sigterm);
  uv_signal_init(&a.loop, &a.sighup);
  a.sigint.data = a.sigterm.data = a.sighup.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.sighup, on_signal, SIGHUP);

  uv_run(&a.loop, UV_RUN_DEFAULT);

  if (a.kill_open) {
    uv_close((uv_handle_t *)&a.kill, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
  }
  kw__rs_log(rs, KW_RS_INFO, "relay.stopped",
             "frames_forwarded=%llu bytes_forwarded=%llu",
             (unsigned long long)rs->m.frames_fwd,
             (unsigned long long)rs->m.bytes_fwd);
  int rc = uv_loop_close(&a.loop) == 0 ? 0 : 1;
  kw__rs_server_free(rs);
  kw__rs_lookup_free(rs);
  kw__tls_cred_free(rs->cred);
  free(rs->allow);
  return rc;
}
