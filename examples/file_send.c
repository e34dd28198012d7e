/* SPDX-License-Identifier: MIT */
/*
 * file_send — send one file to one receiver over keyway.
 *
 *   file_send send FILE          prints a ticket, sends FILE to the first
 *                                receiver that connects, then exits
 *   file_send recv TICKET OUT    connects by ticket, writes the file to OUT
 *
 * The sender opens a unidirectional stream and writes the file into it; the
 * stream's fin marks the end. The receiver closes the connection with code
 * 0 once it has everything (any other code means it failed), so both sides
 * know the outcome. Both run the endpoint's loop on the main thread
 * (kw_endpoint_run) and end it with kw_endpoint_close once done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyway.h>

#define ALPN "keyway-example/file"

typedef struct app {
  kw_endpoint *ep;
  FILE *file;
  kw_conn *peer;      /* the one receiver we serve */
  uint8_t buf[65536]; /* sender: file bytes not yet taken by the stream */
  size_t len, off;
  bool eof, ok;
  uint64_t bytes;
} app;

static int fail(const char *what, kw_err err) {
  fprintf(stderr, "file_send: %s: %s\n", what, kw_strerror(err));
  return 1;
}

/* Creates an endpoint whose callbacks get `a`; `alpn` NULL: dial only. */
static kw_err make_endpoint(app *a, const kw_callbacks *cbs, const char *alpn) {
  kw_config *cfg;
  kw_err err = kw_config_new(&cfg);
  if (err)
    return err;
  if (alpn)
    kw_config_add_alpn(cfg, alpn);
  kw_config_set_callbacks(cfg, cbs, a);
  err = kw_endpoint_new(cfg, &a->ep);
  kw_config_free(cfg);
  return err;
}

/* Ends kw_endpoint_run. Posted from callbacks, so that the close happens
 * after the callback has returned. */
static void stop(kw_endpoint *ep, void *user) { kw_endpoint_close(ep); }

/* ------------------------------------------------------------------------ */
/* Sender                                                                    */

/* Feeds the stream until it pushes back (then on_writable calls again). */
static void pump(kw_stream *s, app *a) {
  for (;;) {
    if (a->off == a->len && !a->eof) {
      a->len = fread(a->buf, 1, sizeof a->buf, a->file);
      a->off = 0;
      a->eof = a->len < sizeof a->buf;
      if (a->eof && ferror(a->file)) {
        kw_stream_reset(s, 1);
        return;
      }
    }
    size_t n = 0;
    kw_err err = kw_stream_write(s, a->buf + a->off, a->len - a->off, a->eof, &n);
    a->off += n;
    a->bytes += n;
    if (err == KW_ERR_AGAIN || a->off < a->len)
      return; /* the stream is full */
    if (err || a->eof)
      return; /* failed, or everything is queued with fin */
  }
}

static void on_writable(kw_stream *s, void *user) { pump(s, user); }

static void on_accepted(kw_conn *c, void *user) {
  app *a = user;
  if (a->peer) {
    kw_conn_close(c, 1, "busy");
    return;
  }
  a->peer = c;
  kw_stream *s;
  kw_err err = kw_conn_open_stream(c, false, &s);
  if (err) {
    fail("open stream", err);
    kw_conn_close(c, 1, "no stream");
    return;
  }
  pump(s, a);
}

static void on_sender_closed(kw_conn *c, kw_err err, uint64_t code, void *user) {
  app *a = user;
  if (c != a->peer)
    return;
  /* the receiver closes with code 0 once it has the whole file */
  a->ok = err == KW_ERR_APP_CLOSED && code == 0 && a->eof && a->off == a->len;
  if (!a->ok)
    fprintf(stderr, "file_send: transfer failed: %s (code %llu)\n", kw_strerror(err),
            (unsigned long long)code);
  kw_endpoint_post(a->ep, stop, NULL);
}

static int run_send(const char *path) {
  static app a;
  a.file = fopen(path, "rb");
  if (!a.file) {
    perror(path);
    return 1;
  }
  kw_callbacks cbs = {
      .conn_accepted = on_accepted,
      .conn_closed = on_sender_closed,
      .stream_writable = on_writable,
  };
  kw_err err = make_endpoint(&a, &cbs, ALPN);
  if (err)
    return fail("endpoint", err);

  kw_endpoint_addr addr;
  char ticket[KW_TICKET_MAX];
  kw_endpoint_get_addr(a.ep, &addr);
  kw_ticket_encode(&addr, ticket, sizeof ticket);
  printf("%s\n", ticket);
  fflush(stdout);

  err = kw_endpoint_run(a.ep); /* until on_sender_closed stops it */
  kw_endpoint_free(a.ep);
  fclose(a.file);
  if (err)
    return fail("loop", err);
  if (a.ok)
    fprintf(stderr, "sent %llu bytes\n", (unsigned long long)a.bytes);
  return a.ok ? 0 : 1;
}

/* ------------------------------------------------------------------------ */
/* Receiver                                                                  */

static kw_endpoint_addr sender;

static void on_data(kw_stream *s, const uint8_t *data, size_t len, bool fin,
                    void *user) {
  app *a = user;
  if (len && fwrite(data, 1, len, a->file) != len) {
    kw_conn_close(kw_stream_conn(s), 2, "write failed");
    return;
  }
  a->bytes += len;
  if (fin) {
    a->ok = fflush(a->file) == 0;
    kw_conn_close(kw_stream_conn(s), a->ok ? 0 : 2, a->ok ? "thanks" : "write failed");
  }
}

static void on_receiver_closed(kw_conn *c, kw_err err, uint64_t code, void *user) {
  app *a = user;
  if (!a->ok)
    fprintf(stderr, "file_send: connection ended early: %s\n", kw_strerror(err));
  kw_endpoint_post(a->ep, stop, NULL);
}

static void on_connected(kw_conn *c, kw_err err, void *user) {
  app *a = user;
  if (err) {
    /* a small file may be complete (and the connection closed) already */
    if (!a->ok)
      fail("connect", err);
    kw_endpoint_post(a->ep, stop, NULL);
  }
}

static void dial(kw_endpoint *ep, void *user) {
  kw_err err = kw_endpoint_connect(ep, &sender, ALPN, on_connected, user);
  if (err)
    on_connected(NULL, err, user);
}

static int run_recv(const char *ticket, const char *out) {
  static app a;
  const char *why = NULL;
  if (kw_ticket_decode(ticket, &sender, &why) != KW_OK) {
    fprintf(stderr, "file_send: bad ticket: %s\n", why);
    return 2;
  }
  a.file = fopen(out, "wb");
  if (!a.file) {
    perror(out);
    return 1;
  }
  kw_callbacks cbs = {
      .conn_closed = on_receiver_closed,
      .stream_data = on_data,
  };
  kw_err err = make_endpoint(&a, &cbs, NULL);
  if (err)
    return fail("endpoint", err);
  kw_endpoint_post(a.ep, dial, &a); /* runs as soon as the loop does */
  err = kw_endpoint_run(a.ep);
  kw_endpoint_free(a.ep);
  if (fclose(a.file) != 0)
    a.ok = false;
  if (!a.ok || err) {
    remove(out);
    return 1;
  }
  fprintf(stderr, "received %llu bytes into %s\n", (unsigned long long)a.bytes, out);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "send") == 0)
    return run_send(argv[2]);
  if (argc == 4 && strcmp(argv[1], "recv") == 0)
    return run_recv(argv[2], argv[3]);
  fprintf(stderr, "usage: file_send send FILE\n       file_send recv TICKET OUT\n");
  return 2;
}
