/* SPDX-License-Identifier: MIT */
/*
 * A strict, bounded HTTP/1.1 head parser for the relay server's few
 * endpoints (docs/protocol/relay.md): the relay upgrade, the lookup store,
 * metrics and the latency probe. It parses only the request line and
 * headers (at most KW_HTTP_MAX_HEADER bytes, CRLF line ends, no folding,
 * no Transfer-Encoding) and reports how many bytes they took, so whatever
 * follows (a body, or relay frames after an upgrade) stays with the
 * caller. It re-parses from the start on every call: feed the whole
 * buffer received so far.
 */
#ifndef KW_CORE_HTTP_H
#define KW_CORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define KW_HTTP_MAX_HEADER 8192 /* request line + headers + blank line */
#define KW_HTTP_MAX_BODY 4096   /* largest Content-Length accepted */
#define KW_HTTP_MAX_PATH 255    /* request-target length */
#define KW_HTTP_MAX_HEADERS 64  /* header lines */

typedef enum kw__http_method {
  KW_HTTP_OTHER = 0,
  KW_HTTP_GET = 1,
  KW_HTTP_PUT = 2,
} kw__http_method;

typedef struct kw__http_req {
  kw__http_method method;
  char path[KW_HTTP_MAX_PATH + 1]; /* request-target, NUL-terminated */
  char host[256];                  /* Host header value */
  bool has_length;
  size_t content_length; /* 0 unless has_length */
  bool upgrade; /* "Upgrade: keyway-relay-v2" (or -v1), "Connection: upgrade" */
  uint8_t upgrade_version; /* 2 or 1 when upgrade (v2 if both listed) */
  size_t header_len; /* bytes of the head, blank line included */
  int status;        /* on KW_ERR_PARSE: the status to answer with */
} kw__http_req;

/* Parses a request head. KW_OK: complete (r->header_len bytes).
 * KW_ERR_AGAIN: incomplete so far, and nothing seen is wrong.
 * KW_ERR_PARSE: malformed; r->status is 400 (syntax, missing or repeated
 * Host, repeated or bad Content-Length, a body on GET), 405 (method other
 * than GET or PUT), 413 (Content-Length above KW_HTTP_MAX_BODY), 414
 * (target too long), 431 (head too long or too many headers), 501
 * (Transfer-Encoding) or 505 (not HTTP/1.1). */
kw_err kw__http_req_parse(const uint8_t *p, size_t len, kw__http_req *r);

typedef struct kw__http_resp {
  int status; /* 100..599 */
  bool upgrade;
  uint8_t upgrade_version;
  bool has_length;
  size_t content_length;
  size_t header_len;
} kw__http_resp;

/* Parses a response head ("HTTP/1.1 DDD reason"). Same rules and results
 * as kw__http_req_parse (no status hint). */
kw_err kw__http_resp_parse(const uint8_t *p, size_t len, kw__http_resp *r);

typedef enum kw__http_route {
  KW_ROUTE_NONE = 0,   /* answer with the status kw__http_route_req gave */
  KW_ROUTE_RELAY,      /* GET /keyway-relay with the upgrade headers */
  KW_ROUTE_LOOKUP_GET, /* GET /lookup/<id> */
  KW_ROUTE_LOOKUP_PUT, /* PUT /lookup/<id>, body of content_length bytes */
  KW_ROUTE_METRICS,    /* GET /metrics */
  KW_ROUTE_PING,       /* GET /ping (latency probe) */
  KW_ROUTE_PKARR_PUT,  /* PUT /pkarr/<id>, body of content_length bytes */
} kw__http_route;

/* Routes a parsed request. A query string is ignored. For the lookup
 * routes `id` receives the endpoint id from the path (base32 text).
 * Returns the route, or KW_ROUTE_NONE with *status 404 (unknown path), 405
 * (known path, wrong method), 426 (relay path without upgrade), 411 (PUT
 * without Content-Length), 400 (bad id, or a body where none belongs). */
kw__http_route kw__http_route_req(const kw__http_req *r, uint8_t id[KW_ID_LEN],
                                  int *status);

/* The standard reason phrase of a status code ("Not Found"), or "Status". */
const char *kw__http_reason(int status);

/* Writes a response head: status line, Content-Length, Content-Type (if
 * not NULL), Cache-Control: no-store, Connection: keep-alive or close.
 * Errors: KW_ERR_INVALID_ARG, KW_ERR_BUFFER. */
kw_err kw__http_resp_head(int status, const char *content_type, size_t body_len,
                          bool close, char *out, size_t cap, size_t *outlen);

#endif /* KW_CORE_HTTP_H */
