/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the keyway CLI: options, the endpoint every subcommand
 * runs, event output (human text or one JSON object per line on stderr),
 * and the exit protocol (0 success, 1 failure, 2 usage error).
 *
 * Threads: the endpoint runs on the library's thread; callbacks run there.
 * The main thread waits in cli_wait() until a subcommand calls cli_done().
 */
#ifndef KW_CLI_COMMON_H
#define KW_CLI_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define CLI_ALPN_PIPE "keyway/pipe/1"
#define CLI_ALPN_SEND "keyway/send/1"
#define CLI_ALPN_PING "keyway/ping/1"
#define CLI_ALPN_TCP "keyway/tcp/1"
#define CLI_MAX_RELAYS 8

/* Application close codes of the keyway tools' connections (QUIC
 * CONNECTION_CLOSE and stream resets); cli_close_reason() words them. */
enum {
  CLI_CODE_DONE = 0,        /* finished normally */
  CLI_CODE_ERROR = 1,       /* failed (the stream was reset) */
  CLI_CODE_PROTOCOL = 2,    /* spoke something else (unknown version) */
  CLI_CODE_OUTPUT = 3,      /* its output was closed (`| head`) */
  CLI_CODE_BUSY = 4,        /* busy with another peer */
  CLI_CODE_INTERRUPTED = 5, /* interrupted (Ctrl-C, SIGTERM) */
  CLI_CODE_REFUSED = 6,     /* tcp: the local service refused */
};

/* --ticket-type */
typedef enum cli_ticket_type {
  CLI_TICKET_FULL = 0, /* id, home relay, direct addresses */
  CLI_TICKET_ID,       /* the id only: dialed by lookup at the relay */
  CLI_TICKET_RELAY,    /* id and home relay */
  CLI_TICKET_ADDRESSES /* id and direct addresses */
} cli_ticket_type;

/* --cc */
enum { CLI_CC_DEFAULT, CLI_CC_BBR, CLI_CC_CUBIC, CLI_CC_RENO };

typedef struct cli {
  const char *cmd;
  /* options */
  const char *key_file;
  bool ephemeral;
  const char *relays[CLI_MAX_RELAYS];
  int n_relays;
  const char *relay_cas[CLI_MAX_RELAYS]; /* --relay-ca, repeatable */
  int n_relay_cas;
  bool no_relay;
  bool relay_only, direct_only; /* --relay-only / --direct-only */
  int cc;                       /* --cc: CLI_CC_*, 0 the library's default */
  cli_ticket_type ticket_type;
  bool portmap;     /* --portmap: UPnP IGD / NAT-PMP on the gateway */
  int dht_publish;  /* kw_dht_publish: --dht-publish-addrs, --no-dht-publish */
  bool lan;         /* --lan: mDNS announcements and lookups on the link */
  bool no_birthday; /* --no-birthday: kw_config_set_birthday_probing off */
  const char *binds[2];
  int n_binds;
  /* --allow-iface/--deny-iface/--allow-prefix/--deny-prefix, in order */
  struct {
    int kind; /* 0 allow iface, 1 deny iface, 2 allow prefix, 3 deny prefix */
    const char *arg;
  } cand[64];
  int n_cand;
  const char *ticket_file;
  bool json;
  int verbosity; /* -1 quiet, 0 normal, 1 -v, 2 -vv */
  const char *alpn;
  double timeout_s;
  bool once;
  const char *out_dir;
  bool force;        /* receive --force */
  bool public_share; /* send --public */
  bool no_progress;  /* send/receive --no-progress */
  long count;        /* ping -c (0 with count_set: until interrupted) */
  bool count_set;
  double interval_s; /* ping -i, 0: the default */
  bool until_direct; /* ping --until-direct */
  const char *to;    /* listen-tcp --to */
  const char *from;  /* connect-tcp --from */
  const char *pos[4];
  int npos;
  uint32_t max_conns; /* set by the subcommand; 0: the library's default */
  /* run state */
  kw_endpoint *ep;
  uint8_t id[KW_ID_LEN];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool finished;
  int exit_code;
  char mismatch[256]; /* "remote presented key X, expected Y" */
  double t_start;
  kw_path_info path; /* last path seen */
  bool path_known;
  /* Runs once on the loop thread when the run ends (before the endpoint
   * closes): emits the final stats event. */
  void (*exit_hook)(struct cli *c);
  bool hook_done;
  /* set under mu when cli_wait starts closing the endpoint: from then on
   * cli_post refuses, so no thread posts into a closed or freed endpoint */
  bool posts_closed;
  /* send: the share's capability, carried in the ticket as its token */
  const uint8_t *ticket_token;
  size_t ticket_token_len;
  /* SIGINT/SIGTERM: when set, runs on the loop thread first (close the
   * connections with CLI_CODE_INTERRUPTED, say so), then the run ends with
   * interrupt_exit (130 unless the command set another). Without it:
   * listen/send stop serving with 0, the others give up with 1. */
  void (*interrupt_hook)(struct cli *c);
  int interrupt_exit; /* 130 unless the command (or its hook) sets it */
  bool interrupted;
  char relay_ca_tmp[256]; /* several --relay-ca joined into one file */
  /* why each --relay last failed, from the library's log (under mu):
   * "certificate", "refused", "resolve", "io"; "" if it did not fail */
  char relay_why[CLI_MAX_RELAYS][16];
} cli;

typedef int (*cli_cmd_fn)(cli *c);

/* Monotonic seconds. */
double cli_now(void);

/* Loads or creates the key (per --key / --ephemeral). 0 or exit code. */
int cli_load_key(cli *c, uint8_t sk[KW_SECRET_KEY_LEN], bool *have);
/* Creates and starts the endpoint with the shared options plus `alpns`
 * (NULL-terminated) and callbacks. Returns 0 or an exit code. */
int cli_start_endpoint(cli *c, const char *const *alpns,
                       const kw_callbacks *cbs, void *user);
/* Parses TARGET (ticket or bare id) into `a`. Returns 0 or 2 (usage). */
int cli_parse_target(cli *c, const char *s, kw_endpoint_addr *a);

/* Prints the ticket line (and writes --ticket-file atomically). */
int cli_emit_ticket(cli *c);
void cli_emit_connected(cli *c, kw_conn *conn);
void cli_emit_path(cli *c, kw_conn *conn, const kw_path_info *p);
/* The final stats event (--json only). Loop thread. */
void cli_emit_stats(cli *c, uint64_t sent, uint64_t received);
/* A transfer summary: the human line "<verb> N bytes in S s (R MB/s)
 * [to ID] path=KIND" or a JSON event named `verb`. */
void cli_emit_summary(cli *c, const char *verb, const uint8_t id[KW_ID_LEN],
                      kw_path_kind kind, uint64_t bytes, double secs);
/* Human text when not quiet and not --json. */
void cli_info(cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The one-line failure message (human or JSON); returns 1. */
int cli_fail(cli *c, kw_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The failure of a dial to `id` with `alpn` as one line naming what went
 * wrong (both keys on a mismatch, the timeout, an unknown id...); returns
 * 1. Loop thread. */
int cli_fail_connect(cli *c, const uint8_t id[KW_ID_LEN], const char *alpn,
                     kw_err err);
/* Words a connection's end for a person: "the remote was interrupted",
 * "closed normally", "no packets for 30 s (the remote vanished)"... `err`
 * and `code` as conn_closed gives them. */
const char *cli_close_reason(kw_err err, uint64_t code, char *buf, size_t n);
/* Words a stream reset's application code. */
const char *cli_code_reason(uint64_t code, char *buf, size_t n);
/* A peer that went, on a serving command: the human line
 * "peer ID went: REASON" or {"event":"disconnected",...}. */
void cli_emit_disconnected(cli *c, kw_conn *conn, kw_err err, uint64_t code);
/* Why relay `url` did not answer, for a person: "certificate not trusted
 * (pass --relay-ca ...)", "connection refused", or NULL when no failure
 * was seen (then: no answer in time). `kind` gets the short name
 * ("certificate", "refused", "resolve", "io") or "timeout". */
const char *cli_relay_why(cli *c, const char *url, const char **kind);
/* Why kw_endpoint_connect said KW_ERR_NO_PATH, in this run's terms. */
const char *cli_no_path_reason(cli *c);
/* Usage error: message and exit code 2. */
int cli_usage_error(cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Ends the run with `code` (first call wins). Any thread. */
void cli_done(cli *c, int code);
/* Waits for cli_done; runs the exit hook on the loop thread; then closes
 * and frees the endpoint. */
int cli_wait(cli *c);
/* kw_endpoint_post for any thread of the CLI (stdin readers, TCP workers,
 * timers): KW_ERR_CLOSED once cli_wait has begun to close the endpoint,
 * which a plain kw_endpoint_post on c->ep could race with (the endpoint is
 * freed while the thread is about to post). */
kw_err cli_post(cli *c, void (*fn)(kw_endpoint *, void *), void *arg);

/* Formats an id's text form into buf (53 bytes). */
const char *cli_id(const uint8_t id[KW_ID_LEN], char *buf);

int cmd_id(cli *c);
int cmd_listen(cli *c);
int cmd_connect(cli *c);
int cmd_send(cli *c);
int cmd_receive(cli *c);
int cmd_ping(cli *c);
int cmd_netcheck(cli *c);
int cmd_listen_tcp(cli *c);
int cmd_connect_tcp(cli *c);

#endif
