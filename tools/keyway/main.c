/*
 * keyway: the command-line tool. One file per subcommand, dispatched from
 * the table below; options shared by all are parsed here.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

typedef struct subcmd {
  const char *name;
  cli_cmd_fn fn;
  const char *args;
  const char *help;
} subcmd;

static const subcmd cmds[] = {
    {"id", cmd_id, "", "print this endpoint's id (creates the key if missing)"},
    {"listen", cmd_listen, "[--alpn A] [--once]",
     "accept a connection; join stdin/stdout to one stream (like netcat)"},
    {"connect", cmd_connect, "TARGET [--alpn A]",
     "connect to a ticket or endpoint id; join stdin/stdout to one stream"},
    {"send", cmd_send, "PATH [--once]",
     "serve a file or directory to whoever holds the ticket"},
    {"receive", cmd_receive, "TICKET [-o DIR] [--force] [--no-progress]",
     "download what a ticket offers, verified, written atomically"},
    {"ping", cmd_ping, "TARGET [-c N]",
     "QUIC round trips: path kind, address and RTT per ping"},
    {"netcheck", cmd_netcheck, "[--json] [--portmap]",
     "reachability report: UDP, reflexive addresses, NAT mapping, relays;\n"
     "                                   port mapping services only with "
     "--portmap"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: keyway COMMAND [options]\n\n"
             "Authenticated, encrypted QUIC connections to any device by its "
             "public key.\n\ncommands:\n");
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    fprintf(f, "  %-9s %-22s %s\n", cmds[i].name, cmds[i].args, cmds[i].help);
  fprintf(
      f,
      "\noptions (all commands):\n"
      "  --key FILE         secret key file (default "
      "$XDG_CONFIG_HOME/keyway/secret.key,\n"
      "                     created with mode 0600 if missing)\n"
      "  --ephemeral        use a fresh key for this run only\n"
      "  --relay URL        a relay, https://HOST:PORT[/?stun=PORT] "
      "(repeatable)\n"
      "  --relay-ca FILE    PEM certificate(s) to trust for relays' TLS\n"
      "  --no-relay         use no relay, even if --relay is given\n"
      "  --bind ADDR:PORT   bind the UDP socket of that family (repeatable, "
      "one per family;\n"
      "                     binding only one family leaves the other off)\n"
      "  --allow-iface P, --deny-iface P\n"
      "                     advertise addresses only of / never of "
      "interfaces P\n"
      "                     (exact, or a prefix ending in '*'; repeatable)\n"
      "  --allow-prefix N, --deny-prefix N\n"
      "                     the same for address prefixes (10.0.0.0/8, "
      "fd00::/8)\n"
      "  --ticket-file FILE listen/send: also write the ticket there "
      "(atomically)\n"
      "  --portmap          ask the gateway for a port mapping (UPnP IGD, "
      "else NAT-PMP;\n"
      "                     off by default: it talks to devices on your "
      "network)\n"
      "  --alpn A           application protocol (listen/connect; default "
      "keyway/pipe/1)\n"
      "  --timeout SECS     give up connecting after SECS (default 10)\n"
      "  --once             listen/send: exit after one peer is done\n"
      "  -o, --out DIR      receive: where to write (default .)\n"
      "  --force            receive: replace files and directories that exist\n"
      "  --no-progress      receive: no progress bar on a terminal\n"
      "  -c, --count N      ping: how many pings (default 4)\n"
      "  --json             stderr carries one JSON object per line\n"
      "  -v, --verbose      more detail (-vv: debug); -q, --quiet: less\n"
      "  -h, --help         this help\n\n"
      "The ticket is printed on stderr as 'ticket: kw1...'. Exit status: 0 "
      "success,\n1 failure (one-line reason on stderr), 2 usage error.\n");
}

enum {
  O_KEY = 256,
  O_EPHEMERAL,
  O_RELAY,
  O_RELAY_CA,
  O_NO_RELAY,
  O_BIND,
  O_TICKET_FILE,
  O_JSON,
  O_ALPN,
  O_TIMEOUT,
  O_ONCE,
  O_PORTMAP,
  O_ALLOW_IFACE,
  O_DENY_IFACE,
  O_ALLOW_PREFIX,
  O_DENY_PREFIX,
  O_FORCE,
  O_NO_PROGRESS,
};

static const struct option long_opts[] = {
    {"key", required_argument, NULL, O_KEY},
    {"ephemeral", no_argument, NULL, O_EPHEMERAL},
    {"relay", required_argument, NULL, O_RELAY},
    {"relay-ca", required_argument, NULL, O_RELAY_CA},
    {"no-relay", no_argument, NULL, O_NO_RELAY},
    {"bind", required_argument, NULL, O_BIND},
    {"ticket-file", required_argument, NULL, O_TICKET_FILE},
    {"json", no_argument, NULL, O_JSON},
    {"alpn", required_argument, NULL, O_ALPN},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"once", no_argument, NULL, O_ONCE},
    {"portmap", no_argument, NULL, O_PORTMAP},
    {"allow-iface", required_argument, NULL, O_ALLOW_IFACE},
    {"deny-iface", required_argument, NULL, O_DENY_IFACE},
    {"allow-prefix", required_argument, NULL, O_ALLOW_PREFIX},
    {"deny-prefix", required_argument, NULL, O_DENY_PREFIX},
    {"force", no_argument, NULL, O_FORCE},
    {"no-progress", no_argument, NULL, O_NO_PROGRESS},
    {"out", required_argument, NULL, 'o'},
    {"count", required_argument, NULL, 'c'},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse(cli *c, int argc, char **argv) {
  int o;
  opterr = 0;
  optind = 1;
  while ((o = getopt_long(argc, argv, "o:c:vqh", long_opts, NULL)) != -1) {
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
      c->relay_ca = optarg;
      break;
    case O_NO_RELAY:
      c->no_relay = true;
      break;
    case O_BIND:
      if (c->n_binds >= 2)
        return cli_usage_error(c, "--bind at most twice (one per family)");
      c->binds[c->n_binds++] = optarg;
      break;
    case O_TICKET_FILE:
      c->ticket_file = optarg;
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
    case O_ALLOW_IFACE:
    case O_DENY_IFACE:
    case O_ALLOW_PREFIX:
    case O_DENY_PREFIX:
      if (c->n_cand >= (int)(sizeof c->cand / sizeof c->cand[0]))
        return cli_usage_error(c, "too many interface/prefix filters");
      c->cand[c->n_cand].kind = o - O_ALLOW_IFACE;
      c->cand[c->n_cand++].arg = optarg;
      break;
    case 'o':
      c->out_dir = optarg;
      break;
    case O_FORCE:
      c->force = true;
      break;
    case O_NO_PROGRESS:
      c->no_progress = true;
      break;
    case 'c':
      c->count = strtol(optarg, &end, 10);
      if (*end || c->count < 1 || c->count > 1000000)
        return cli_usage_error(c, "-c %s: not a count", optarg);
      break;
    case 'v':
      c->verbosity = c->verbosity < 0 ? 1 : c->verbosity + 1;
      break;
    case 'q':
      c->verbosity = -1;
      break;
    case 'h':
      return -1;
    default:
      if (optopt && optopt < 256)
        return cli_usage_error(c, "unknown option -%c", optopt);
      return cli_usage_error(c, "unknown option %s", argv[optind - 1]);
    }
  }
  for (; optind < argc; optind++) {
    if ((size_t)c->npos >= sizeof c->pos / sizeof c->pos[0])
      return cli_usage_error(c, "too many arguments");
    c->pos[c->npos++] = argv[optind];
  }
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("keyway %s\n", KW_VERSION);
    return 0;
  }
  const subcmd *sc = NULL;
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(argv[1], cmds[i].name) == 0)
      sc = &cmds[i];
  static cli c;
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  c.cmd = argv[1];
  if (!sc) {
    fprintf(stderr, "keyway: unknown command '%s' (see 'keyway --help')\n",
            argv[1]);
    return 2;
  }
  /* options may come before or after the arguments */
  int rc = parse(&c, argc - 1, argv + 1);
  if (rc == -1) {
    printf("usage: keyway %s %s [options]\n\n%s\n\n(see 'keyway --help' for "
           "the options)\n",
           sc->name, sc->args, sc->help);
    return 0;
  }
  if (rc)
    return rc;
  return sc->fn(&c);
}
