/* SPDX-License-Identifier: MIT */
/*
 * keyway: the command-line tool. One file per subcommand, dispatched from
 * the table below; the options, shared by all, are parsed here from one
 * table that also writes `keyway --help` and `keyway COMMAND --help` (each
 * command lists the options it takes). docs/man/keyway.1 documents every
 * option listed here (tests/integration/test_cli_man.sh checks it).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* which commands take an option */
enum {
  C_ID = 1u << 0,
  C_LISTEN = 1u << 1,
  C_CONNECT = 1u << 2,
  C_SEND = 1u << 3,
  C_RECEIVE = 1u << 4,
  C_PING = 1u << 5,
  C_NETCHECK = 1u << 6,
  C_LTCP = 1u << 7,
  C_CTCP = 1u << 8,
  C_ALL = 0x1ff,
  C_NET = C_ALL & ~C_ID,                 /* run an endpoint */
  C_TICKET = C_LISTEN | C_SEND | C_LTCP, /* print a ticket */
  C_DIAL = C_CONNECT | C_RECEIVE | C_PING | C_CTCP,
};

typedef struct subcmd {
  const char *name;
  cli_cmd_fn fn;
  unsigned bit;
  const char *args;
  const char *help;
} subcmd;

static const subcmd cmds[] = {
    {"id", cmd_id, C_ID, "",
     "print this endpoint's id (creates the key if missing)"},
    {"listen", cmd_listen, C_LISTEN, "",
     "accept connections; join stdin/stdout to one stream (like netcat)"},
    {"connect", cmd_connect, C_CONNECT, "TARGET",
     "connect to a ticket or endpoint id; join stdin/stdout to one stream"},
    {"send", cmd_send, C_SEND, "PATH",
     "serve a file or directory to whoever holds the ticket"},
    {"receive", cmd_receive, C_RECEIVE, "TICKET",
     "download what a ticket offers, verified, written atomically"},
    {"ping", cmd_ping, C_PING, "TARGET",
     "QUIC round trips: path kind, address and RTT per reply"},
    {"netcheck", cmd_netcheck, C_NETCHECK, "",
     "reachability report: UDP, reflexive addresses, NAT, relays"},
    {"listen-tcp", cmd_listen_tcp, C_LTCP, "--to HOST:PORT",
     "expose a local TCP service to whoever dials this endpoint"},
    {"connect-tcp", cmd_connect_tcp, C_CTCP, "--from ADDR:PORT TARGET",
     "accept TCP on ADDR:PORT; each connection becomes one stream"},
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

enum {
  O_KEY = 256,
  O_EPHEMERAL,
  O_RELAY,
  O_RELAY_CA,
  O_NO_RELAY,
  O_RELAY_ONLY,
  O_DIRECT_ONLY,
  O_BIND,
  O_TICKET_FILE,
  O_TICKET_TYPE,
  O_JSON,
  O_ALPN,
  O_TIMEOUT,
  O_ONCE,
  O_PORTMAP,
  O_DHT_ADDRS,
  O_NO_DHT,
  O_ALLOW_IFACE,
  O_DENY_IFACE,
  O_ALLOW_PREFIX,
  O_DENY_PREFIX,
  O_FORCE,
  O_PUBLIC,
  O_NO_PROGRESS,
  O_UNTIL_DIRECT,
  O_TO,
  O_FROM,
  O_CC,
  O_LAN,
  O_NO_BIRTHDAY,
};

typedef struct optdoc {
  const char *name; /* long name */
  int val;          /* getopt value; a letter for those with a short form */
  const char *arg;  /* NULL: takes no argument */
  unsigned cmds;
  const char *help;
} optdoc;

static const optdoc opts[] = {
    {"key", O_KEY, "FILE", C_ALL,
     "secret key file (default $XDG_CONFIG_HOME/keyway/secret.key,\n"
     "created with mode 0600 if missing)"},
    {"ephemeral", O_EPHEMERAL, NULL, C_ALL,
     "use a fresh key for this run only"},
    {"relay", O_RELAY, "URL", C_NET,
     "a relay, https://HOST:PORT[/?stun=PORT] (repeatable)"},
    {"relay-ca", O_RELAY_CA, "FILE", C_NET,
     "PEM certificate(s) to trust for relays' TLS (repeatable)"},
    {"no-relay", O_NO_RELAY, NULL, C_NET,
     "use no relay, even if --relay is given"},
    {"relay-only", O_RELAY_ONLY, NULL, C_NET,
     "connections go only through the relay: no direct UDP path,\n"
     "tickets name no direct address"},
    {"direct-only", O_DIRECT_ONLY, NULL, C_NET,
     "connections never go through a relay (a relay may still\n"
     "resolve ids and coordinate hole punching)"},
    {"bind", O_BIND, "ADDR:PORT", C_NET,
     "bind the UDP socket of that family (repeatable, one per\n"
     "family; binding only one family leaves the other off)"},
    {"allow-iface", O_ALLOW_IFACE, "P", C_NET,
     "advertise addresses only of interfaces P (exact, or a prefix\n"
     "ending in '*'; repeatable)"},
    {"deny-iface", O_DENY_IFACE, "P", C_NET,
     "never advertise addresses of interfaces P (repeatable)"},
    {"allow-prefix", O_ALLOW_PREFIX, "N", C_NET,
     "advertise only addresses in prefix N (10.0.0.0/8, fd00::/8)"},
    {"deny-prefix", O_DENY_PREFIX, "N", C_NET,
     "never advertise addresses in prefix N"},
    {"cc", O_CC, "ALGO", C_NET,
     "congestion controller of what this side sends: bbr (the\n"
     "default), cubic or reno"},
    {"portmap", O_PORTMAP, NULL, C_NET,
     "ask the gateway for a port mapping (PCP and UPnP IGD, else\n"
     "NAT-PMP; off by default: it talks to devices on your network)"},
    {"dht-publish-addrs", O_DHT_ADDRS, NULL, C_NET,
     "the record a DHT relay puts into the Mainline DHT also names\n"
     "our direct addresses (default: only the home relay)"},
    {"no-dht-publish", O_NO_DHT, NULL, C_NET,
     "publish no record into the DHT, even through a DHT relay"},
    {"lan", O_LAN, NULL, C_NET,
     "LAN discovery: announce this endpoint by mDNS on the local\n"
     "link and resolve bare ids there too (off by default: it\n"
     "multicasts this endpoint's id and addresses to the network)"},
    {"no-birthday", O_NO_BIRTHDAY, NULL, C_NET,
     "no birthday probing: between an endpoint-dependent NAT and an\n"
     "endpoint-independent one, do not open up to 256 extra UDP\n"
     "sockets or spray up to 2048 Pings to go direct (on by default)"},
    {"ticket-file", O_TICKET_FILE, "FILE", C_TICKET,
     "also write the ticket there (atomically)"},
    {"ticket-type", O_TICKET_TYPE, "T", C_TICKET,
     "what the ticket holds: id (dial by id through the relay),\n"
     "relay (id and home relay), addresses (id and direct\n"
     "addresses), full (all of them; the default)"},
    {"alpn", O_ALPN, "A", C_LISTEN | C_CONNECT | C_LTCP | C_CTCP,
     "application protocol (default keyway/pipe/1, keyway/tcp/1 for\n"
     "the tcp commands); listen/connect with another ALPN carry raw\n"
     "bytes"},
    {"timeout", O_TIMEOUT, "SECS", C_DIAL | C_NETCHECK,
     "give up connecting after SECS (default 10; netcheck: 3)"},
    {"once", O_ONCE, NULL, C_LISTEN | C_SEND, "exit after one peer is done"},
    {"out", 'o', "DIR", C_RECEIVE, "where to write (default .)"},
    {"force", O_FORCE, NULL, C_RECEIVE,
     "replace existing files of the same name"},
    {"public", O_PUBLIC, NULL, C_SEND,
     "serve any receiver, also one that knows only this endpoint's\n"
     "id (`keyway receive ID`, found through a relay, the DHT or\n"
     "--lan), not only holders of the ticket's capability"},
    {"no-progress", O_NO_PROGRESS, NULL, C_SEND | C_RECEIVE,
     "no progress line, only the summary"},
    {"count", 'c', "N", C_PING, "how many pings (default 4; 0: until Ctrl-C)"},
    {"interval", 'i', "SECS", C_PING, "seconds between pings (default 1)"},
    {"until-direct", O_UNTIL_DIRECT, NULL, C_PING,
     "stop once a reply came over a direct path (exit 1 if none did)"},
    {"to", O_TO, "HOST:PORT", C_LTCP, "the TCP service each stream goes to"},
    {"from", O_FROM, "ADDR:PORT", C_CTCP,
     "where to accept TCP connections (e.g. 127.0.0.1:8080)"},
    {"json", O_JSON, NULL, C_ALL, "stderr carries one JSON object per line"},
    {"verbose", 'v', NULL, C_ALL, "more detail (-vv: debug)"},
    {"quiet", 'q', NULL, C_ALL, "less output"},
    {"help", 'h', NULL, C_ALL, "this help"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

/* One option: its head in a column, the help re-flowed to 80 columns. */
static void print_opt(FILE *f, const optdoc *o) {
  char head[64];
  if (o->val < 256)
    snprintf(head, sizeof head, "-%c, --%s%s%s", o->val, o->name,
             o->arg ? " " : "", o->arg ? o->arg : "");
  else
    snprintf(head, sizeof head, "    --%s%s%s", o->name, o->arg ? " " : "",
             o->arg ? o->arg : "");
  enum { COL = 25, WIDTH = 79 };
  fprintf(f, "  %-*s", COL - 2, head);
  int x = COL;
  if (strlen(head) > COL - 3) {
    fprintf(f, "\n%*s", COL, "");
  } else {
    fputc(' ', f);
    x = COL + 1;
  }
  int start = x;
  const char *p = o->help;
  while (*p) {
    while (*p == ' ' || *p == '\n')
      p++;
    size_t w = strcspn(p, " \n");
    if (!w)
      break;
    if (x > start && x + 1 + (int)w > WIDTH) {
      fprintf(f, "\n%*s", start, "");
      x = start;
    } else if (x > start) {
      fputc(' ', f);
      x++;
    }
    fwrite(p, 1, w, f);
    x += (int)w;
    p += w;
  }
  fputc('\n', f);
}

static void usage(FILE *f) {
  fprintf(f, "usage: keyway COMMAND [options]\n\n"
             "Authenticated, encrypted QUIC connections to any device by its "
             "public key.\n\ncommands:\n");
  for (size_t i = 0; i < NCMDS; i++)
    fprintf(f, "  %s%s%s\n      %s\n", cmds[i].name, cmds[i].args[0] ? " " : "",
            cmds[i].args, cmds[i].help);
  fprintf(f, "\noptions (see 'keyway COMMAND --help' for those a command "
             "takes):\n");
  for (size_t i = 0; i < NOPTS; i++)
    print_opt(f, &opts[i]);
  fprintf(f, "  %-24s %s\n", "    --version", "print the version and exit");
  fprintf(f, "\nThe ticket is printed on stderr as 'ticket: kw1...'. Exit "
             "status: 0 success,\n1 failure (one-line reason on stderr), 2 "
             "usage error, 130 interrupted.\nSee keyway(1).\n");
}

static void cmd_usage(FILE *f, const subcmd *sc) {
  fprintf(f, "usage: keyway %s%s%s [options]\n\n%s\n\noptions:\n", sc->name,
          sc->args[0] ? " " : "", sc->args, sc->help);
  for (size_t i = 0; i < NOPTS; i++)
    if (opts[i].cmds & sc->bit)
      print_opt(f, &opts[i]);
  fprintf(f, "\nSee keyway(1).\n");
}

/* Levenshtein distance, for "did you mean" (short strings only). */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 31 || lb > 31)
    return 99;
  size_t d[32][32];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t x = d[i - 1][j] + 1, y = d[i][j - 1] + 1,
             z = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      x = x < y ? x : y;
      d[i][j] = x < z ? x : z;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < d[i][j])
        d[i][j] = d[i - 2][j - 2] + 1; /* a transposition */
    }
  return d[la][lb];
}

static const char *suggest_cmd(const char *s) {
  const char *best = NULL;
  size_t bd = 3;
  for (size_t i = 0; i < NCMDS; i++) {
    size_t d = distance(s, cmds[i].name);
    if (d < bd || (strlen(s) >= 3 && !strncmp(cmds[i].name, s, strlen(s)) &&
                   d < bd + 3 && !best)) {
      bd = d < bd ? d : bd;
      best = cmds[i].name;
    }
  }
  return best;
}

static const char *suggest_opt(const char *s) {
  while (*s == '-')
    s++;
  char name[64];
  snprintf(name, sizeof name, "%s", s);
  char *eq = strchr(name, '=');
  if (eq)
    *eq = 0;
  const char *best = NULL;
  size_t bd = 3;
  for (size_t i = 0; i < NOPTS; i++) {
    size_t d = distance(name, opts[i].name);
    if (d < bd) {
      bd = d;
      best = opts[i].name;
    }
  }
  return best;
}

static int parse(cli *c, const subcmd *sc, int argc, char **argv) {
  struct option lo[NOPTS + 1];
  char shorts[32] = "";
  size_t ns = 0;
  for (size_t i = 0; i < NOPTS; i++) {
    lo[i].name = opts[i].name;
    lo[i].has_arg = opts[i].arg ? required_argument : no_argument;
    lo[i].flag = NULL;
    lo[i].val = opts[i].val;
    if (opts[i].val < 256 && ns + 3 < sizeof shorts) {
      shorts[ns++] = (char)opts[i].val;
      if (opts[i].arg)
        shorts[ns++] = ':';
      shorts[ns] = 0;
    }
  }
  memset(&lo[NOPTS], 0, sizeof lo[NOPTS]);
  int o;
  opterr = 0;
  optind = 1;
  while ((o = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
    char *end;
    switch (o) {
    case O_KEY:
      c->key_file = optarg;
      break;
    case O_EPHEMERAL:
      c->ephemeral = true;
      break;
    case O_RELAY:
      if (c->n_relays >= CLI_MAX_RELAYS)
        return cli_usage_error(c, "at most %d --relay", CLI_MAX_RELAYS);
      c->relays[c->n_relays++] = optarg;
      break;
    case O_RELAY_CA:
      if (c->n_relay_cas >= CLI_MAX_RELAYS)
        return cli_usage_error(c, "at most %d --relay-ca", CLI_MAX_RELAYS);
      c->relay_cas[c->n_relay_cas++] = optarg;
      break;
    case O_NO_RELAY:
      c->no_relay = true;
      break;
    case O_NO_BIRTHDAY:
      c->no_birthday = true;
      break;
    case O_RELAY_ONLY:
      c->relay_only = true;
      break;
    case O_DIRECT_ONLY:
      c->direct_only = true;
      break;
    case O_CC:
      if (!strcmp(optarg, "bbr"))
        c->cc = CLI_CC_BBR;
      else if (!strcmp(optarg, "cubic"))
        c->cc = CLI_CC_CUBIC;
      else if (!strcmp(optarg, "reno"))
        c->cc = CLI_CC_RENO;
      else
        return cli_usage_error(c, "--cc: bbr, cubic or reno, not '%s'", optarg);
      break;
    case O_BIND:
      if (c->n_binds >= 2)
        return cli_usage_error(c, "--bind at most twice (one per family)");
      c->binds[c->n_binds++] = optarg;
      break;
    case O_TICKET_FILE:
      c->ticket_file = optarg;
      break;
    case O_TICKET_TYPE:
      if (!strcmp(optarg, "id"))
        c->ticket_type = CLI_TICKET_ID;
      else if (!strcmp(optarg, "relay"))
        c->ticket_type = CLI_TICKET_RELAY;
      else if (!strcmp(optarg, "addresses"))
        c->ticket_type = CLI_TICKET_ADDRESSES;
      else if (!strcmp(optarg, "full"))
        c->ticket_type = CLI_TICKET_FULL;
      else
        return cli_usage_error(
            c, "--ticket-type %s: not one of id, relay, addresses, full",
            optarg);
      break;
    case O_JSON:
      c->json = true;
      break;
    case O_ALPN:
      if (!*optarg || strlen(optarg) > 255)
        return cli_usage_error(c, "--alpn must be 1 to 255 bytes");
      c->alpn = optarg;
      break;
    case O_TIMEOUT:
      c->timeout_s = strtod(optarg, &end);
      if (*end || !(c->timeout_s > 0) || c->timeout_s > 86400)
        return cli_usage_error(c, "--timeout %s: not a number of seconds",
                               optarg);
      break;
    case O_ONCE:
      c->once = true;
      break;
    case O_PORTMAP:
      c->portmap = true;
      break;
    case O_DHT_ADDRS:
      c->dht_publish = KW_DHT_PUBLISH_ADDRS;
      break;
    case O_NO_DHT:
      c->dht_publish = KW_DHT_PUBLISH_NONE;
      break;
    case O_LAN:
      c->lan = true;
      break;
    case O_ALLOW_IFACE:
    case O_DENY_IFACE:
    case O_ALLOW_PREFIX:
    case O_DENY_PREFIX:
      if (c->n_cand >= (int)(sizeof c->cand / sizeof c->cand[0]))
        return cli_usage_error(c, "too many interface/prefix filters");
      c->cand[c->n_cand].kind = o - O_ALLOW_IFACE;
      c->cand[c->n_cand++].arg = optarg;
      break;
    case O_FORCE:
      c->force = true;
      break;
    case O_PUBLIC:
      c->public_share = true;
      break;
    case O_NO_PROGRESS:
      c->no_progress = true;
      break;
    case O_UNTIL_DIRECT:
      c->until_direct = true;
      break;
    case O_TO:
      c->to = optarg;
      break;
    case O_FROM:
      c->from = optarg;
      break;
    case 'o':
      c->out_dir = optarg;
      break;
    case 'c':
      c->count = strtol(optarg, &end, 10);
      if (*end || c->count < 0 || c->count > 1000000)
        return cli_usage_error(c, "-c %s: not a count", optarg);
      c->count_set = true;
      break;
    case 'i':
      c->interval_s = strtod(optarg, &end);
      if (*end || !(c->interval_s >= 0.01) || c->interval_s > 3600)
        return cli_usage_error(c,
                               "-i %s: not a number of seconds (0.01 to "
                               "3600)",
                               optarg);
      break;
    case 'v':
      c->verbosity = c->verbosity < 0 ? 1 : c->verbosity + 1;
      break;
    case 'q':
      c->verbosity = -1;
      break;
    case 'h':
      return -1;
    default: {
      const char *bad = argv[optind - 1];
      if (optopt && optopt < 256)
        return cli_usage_error(c, "unknown option -%c", optopt);
      bool missing = false;
      for (size_t i = 0; i < NOPTS; i++)
        if (optopt == opts[i].val)
          missing = true;
      if (missing)
        return cli_usage_error(c, "%s needs an argument", bad);
      const char *s = suggest_opt(bad);
      if (s)
        return cli_usage_error(c, "unknown option %s (did you mean --%s?)", bad,
                               s);
      return cli_usage_error(c, "unknown option %s", bad);
    }
    }
  }
  for (; optind < argc; optind++) {
    if ((size_t)c->npos >= sizeof c->pos / sizeof c->pos[0])
      return cli_usage_error(c, "too many arguments");
    c->pos[c->npos++] = argv[optind];
  }
  if (c->relay_only && c->direct_only)
    return cli_usage_error(c, "--relay-only and --direct-only exclude each "
                              "other");
  if (c->relay_only && (c->no_relay || c->n_relays == 0) && (sc->bit & C_NET) &&
      !(sc->bit & C_NETCHECK))
    return cli_usage_error(c, "--relay-only needs a --relay URL");
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    if (argc >= 3 && !strcmp(argv[1], "help")) { /* keyway help COMMAND */
      for (size_t i = 0; i < NCMDS; i++)
        if (!strcmp(argv[2], cmds[i].name)) {
          cmd_usage(stdout, &cmds[i]);
          return 0;
        }
    }
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
    printf("keyway %s\n", kw_version_string());
    return 0;
  }
  const subcmd *sc = NULL;
  for (size_t i = 0; i < NCMDS; i++)
    if (strcmp(argv[1], cmds[i].name) == 0)
      sc = &cmds[i];
  static cli c;
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  c.cmd = argv[1];
  c.interrupt_exit = 130; /* a command's interrupt hook may choose another */
  if (!sc) {
    const char *s =
        argv[1][0] == '-' ? suggest_opt(argv[1]) : suggest_cmd(argv[1]);
    if (argv[1][0] == '-')
      fprintf(stderr,
              "keyway: '%s' comes after a command (see 'keyway "
              "--help')\n",
              argv[1]);
    else if (s)
      fprintf(stderr,
              "keyway: unknown command '%s': did you mean '%s'? "
              "(see 'keyway --help')\n",
              argv[1], s);
    else
      fprintf(stderr, "keyway: unknown command '%s' (see 'keyway --help')\n",
              argv[1]);
    return 2;
  }
  /* options may come before or after the arguments */
  int rc = parse(&c, sc, argc - 1, argv + 1);
  if (rc == -1) {
    cmd_usage(stdout, sc);
    return 0;
  }
  if (rc)
    return rc;
  return sc->fn(&c);
}
