/* SPDX-License-Identifier: MIT */
/* Strict, bounded HTTP/1.1 head parser. See http.h. */
#include "core/http.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/relay_proto.h"

/* What the header lines told, for requests and responses alike. */
typedef struct head {
  bool has_length;
  size_t content_length;
  uint8_t up_version; /* highest keyway-relay-vN listed in Upgrade, 0 none */
  bool conn_upgrade; /* Connection lists upgrade */
  int n_host;
  char host[256];
  int status; /* error status hint */
} head;

static bool is_tchar(uint8_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
      (c >= 'A' && c <= 'Z'))
    return true;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Allowed inside a line: HT, SP, visible ASCII, obs-text. */
static bool is_line_char(uint8_t c) {
  return c == '\t' || (c >= 0x20 && c != 0x7F);
}

static uint8_t lower(uint8_t c) {
  return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

static bool ci_equal(const uint8_t *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen != blen)
    return false;
  for (size_t i = 0; i < alen; i++)
    if (lower(a[i]) != lower((uint8_t)b[i]))
      return false;
  return true;
}

/* True if the comma-separated list v[0..n) has an element equal to `tok`
 * (case-insensitive, optional whitespace around elements). */
static bool list_has(const uint8_t *v, size_t n, const char *tok) {
  size_t i = 0;
  while (i <= n) {
    size_t s = i;
    while (i < n && v[i] != ',')
      i++;
    size_t e = i;
    while (s < e && (v[s] == ' ' || v[s] == '\t'))
      s++;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
      e--;
    if (ci_equal(v + s, e - s, tok))
      return true;
    i++; /* skip the comma (or step past the end) */
  }
  return false;
}

static kw_err fail(head *h, int status) {
  h->status = status;
  return KW_ERR_PARSE;
}

/* One header line (no CRLF). */
static kw_err header_line(head *h, const uint8_t *l, size_t n, bool is_req) {
  size_t c = 0;
  while (c < n && is_tchar(l[c]))
    c++;
  if (c == 0 || c == n || l[c] != ':')
    return fail(h, 400); /* empty name, no colon, or space before it */
  const uint8_t *name = l;
  size_t nlen = c;
  size_t vs = c + 1, ve = n;
  while (vs < ve && (l[vs] == ' ' || l[vs] == '\t'))
    vs++;
  while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
    ve--;
  const uint8_t *v = l + vs;
  size_t vlen = ve - vs;

  if (ci_equal(name, nlen, "content-length")) {
    if (h->has_length || vlen == 0 || vlen > 18)
      return fail(h, 400);
    size_t val = 0;
    for (size_t i = 0; i < vlen; i++) {
      if (v[i] < '0' || v[i] > '9')
        return fail(h, 400);
      val = val * 10 + (size_t)(v[i] - '0');
    }
    if (is_req && val > KW_HTTP_MAX_BODY)
      return fail(h, 413);
    h->has_length = true;
    h->content_length = val;
  } else if (ci_equal(name, nlen, "transfer-encoding")) {
    return fail(h, 501);
  } else if (ci_equal(name, nlen, "host")) {
    if (++h->n_host > 1 || vlen >= sizeof(h->host))
      return fail(h, 400);
    memcpy(h->host, v, vlen);
    h->host[vlen] = '\0';
  } else if (ci_equal(name, nlen, "upgrade")) {
    if (list_has(v, vlen, KW_RELAY_HTTP_TOKEN))
      h->up_version = KW_RELAY_VERSION;
    else if (list_has(v, vlen, KW_RELAY_HTTP_TOKEN_V1) && h->up_version == 0)
      h->up_version = KW_RELAY_VERSION_V1;
  } else if (ci_equal(name, nlen, "connection")) {
    if (list_has(v, vlen, "upgrade"))
      h->conn_upgrade = true;
  }
  return KW_OK;
}

typedef kw_err (*first_line_fn)(head *h, const uint8_t *l, size_t n, void *out);

/* Walks the head line by line. Returns KW_OK with *hlen set, KW_ERR_AGAIN
 * or KW_ERR_PARSE (h->status set). */
static kw_err parse_head(const uint8_t *p, size_t len, bool is_req, head *h,
                         first_line_fn first, void *out, size_t *hlen) {
  memset(h, 0, sizeof(*h));
  if (!p && len)
    return fail(h, 400);
  size_t limit = len < KW_HTTP_MAX_HEADER ? len : KW_HTTP_MAX_HEADER;
  size_t pos = 0;
  int lines = 0;
  for (;;) {
    const uint8_t *nl = memchr(p + pos, '\n', limit - pos);
    if (!nl) {
      /* Incomplete line: fail early on bytes no head may hold. */
      for (size_t i = pos; i < limit; i++)
        if (!is_line_char(p[i]) && !(p[i] == '\r' && i == limit - 1))
          return fail(h, 400);
      if (len >= KW_HTTP_MAX_HEADER)
        return fail(h, 431);
      return KW_ERR_AGAIN;
    }
    size_t e = (size_t)(nl - p);
    if (e == pos || p[e - 1] != '\r')
      return fail(h, 400); /* bare LF */
    const uint8_t *l = p + pos;
    size_t n = e - 1 - pos;
    for (size_t i = 0; i < n; i++)
      if (!is_line_char(l[i]))
        return fail(h, 400);
    pos = e + 1;
    if (lines == 0) {
      kw_err err = first(h, l, n, out);
      if (err != KW_OK)
        return err;
    } else if (n == 0) {
      if (is_req && h->n_host == 0)
        return fail(h, 400);
      *hlen = pos;
      return KW_OK;
    } else {
      if (l[0] == ' ' || l[0] == '\t')
        return fail(h, 400); /* obsolete line folding */
      if (lines > KW_HTTP_MAX_HEADERS)
        return fail(h, 431);
      kw_err err = header_line(h, l, n, is_req);
      if (err != KW_OK)
        return err;
    }
    lines++;
  }
}

static kw_err version_check(head *h, const uint8_t *v, size_t n) {
  if (n == 8 && memcmp(v, "HTTP/1.1", 8) == 0)
    return KW_OK;
  if (n == 8 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' &&
      v[6] == '.' && v[7] >= '0' && v[7] <= '9')
    return fail(h, 505);
  return fail(h, 400);
}

static kw_err request_line(head *h, const uint8_t *l, size_t n, void *out) {
  kw__http_req *r = out;
  size_t i = 0;
  while (i < n && is_tchar(l[i]))
    i++;
  if (i == 0 || i == n || l[i] != ' ')
    return fail(h, 400);
  const uint8_t *m = l;
  size_t mlen = i;
  size_t ts = ++i;
  while (i < n && l[i] > 0x20 && l[i] < 0x7F)
    i++;
  if (i == ts || i == n || l[i] != ' ')
    return fail(h, 400);
  size_t tlen = i - ts;
  kw_err err = version_check(h, l + i + 1, n - i - 1);
  if (err != KW_OK)
    return err;
  if (l[ts] != '/')
    return fail(h, 400); /* origin-form only */
  if (tlen > KW_HTTP_MAX_PATH)
    return fail(h, 414);
  if (mlen == 3 && memcmp(m, "GET", 3) == 0)
    r->method = KW_HTTP_GET;
  else if (mlen == 3 && memcmp(m, "PUT", 3) == 0)
    r->method = KW_HTTP_PUT;
  else
    return fail(h, 405);
  memcpy(r->path, l + ts, tlen);
  r->path[tlen] = '\0';
  return KW_OK;
}

static kw_err status_line(head *h, const uint8_t *l, size_t n, void *out) {
  kw__http_resp *r = out;
  if (n < 12 || l[8] != ' ')
    return fail(h, 400);
  kw_err err = version_check(h, l, 8);
  if (err != KW_OK)
    return err;
  int st = 0;
  for (int i = 9; i < 12; i++) {
    if (l[i] < '0' || l[i] > '9')
      return fail(h, 400);
    st = st * 10 + (l[i] - '0');
  }
  if (st < 100 || st > 599 || (n > 12 && l[12] != ' '))
    return fail(h, 400);
  r->status = st;
  return KW_OK;
}

kw_err kw__http_req_parse(const uint8_t *p, size_t len, kw__http_req *r) {
  if (!r)
    return KW_ERR_INVALID_ARG;
  memset(r, 0, sizeof(*r));
  head h;
  size_t hlen = 0;
  kw_err err = parse_head(p, len, true, &h, request_line, r, &hlen);
  r->status = h.status;
  if (err != KW_OK)
    return err;
  r->has_length = h.has_length;
  r->content_length = h.content_length;
  r->upgrade = h.up_version && h.conn_upgrade;
  r->upgrade_version = r->upgrade ? h.up_version : 0;
  memcpy(r->host, h.host, sizeof(r->host));
  r->header_len = hlen;
  return KW_OK;
}

kw_err kw__http_resp_parse(const uint8_t *p, size_t len, kw__http_resp *r) {
  if (!r)
    return KW_ERR_INVALID_ARG;
  memset(r, 0, sizeof(*r));
  head h;
  size_t hlen = 0;
  kw_err err = parse_head(p, len, false, &h, status_line, r, &hlen);
  if (err != KW_OK) {
    r->status = 0;
    return err;
  }
  r->has_length = h.has_length;
  r->content_length = h.content_length;
  r->upgrade = h.up_version && h.conn_upgrade;
  r->upgrade_version = r->upgrade ? h.up_version : 0;
  r->header_len = hlen;
  return KW_OK;
}

kw__http_route kw__http_route_req(const kw__http_req *r, uint8_t id[KW_ID_LEN],
                                  int *status) {
  int dummy;
  if (!status)
    status = &dummy;
  *status = 400;
  if (!r)
    return KW_ROUTE_NONE;
  size_t plen = strcspn(r->path, "?");
  const char *path = r->path;
  bool get = r->method == KW_HTTP_GET;
  if (get && r->content_length > 0) {
    *status = 400;
    return KW_ROUTE_NONE;
  }
  static const char lookup[] = "/lookup/";
  const size_t llen = sizeof(lookup) - 1;

  if (plen == strlen(KW_RELAY_HTTP_PATH) &&
      memcmp(path, KW_RELAY_HTTP_PATH, plen) == 0) {
    if (!get) {
      *status = 405;
      return KW_ROUTE_NONE;
    }
    if (!r->upgrade) {
      *status = 426;
      return KW_ROUTE_NONE;
    }
    *status = 101;
    return KW_ROUTE_RELAY;
  }
  static const char pkarr[] = "/pkarr/";
  bool is_pkarr = plen >= sizeof(pkarr) - 1 &&
                  memcmp(path, pkarr, sizeof(pkarr) - 1) == 0;
  if (is_pkarr || (plen >= llen && memcmp(path, lookup, llen) == 0)) {
    size_t pre = is_pkarr ? sizeof(pkarr) - 1 : llen;
    if (is_pkarr && r->method != KW_HTTP_PUT) {
      *status = 405;
      return KW_ROUTE_NONE;
    }
    if (r->method != KW_HTTP_GET && r->method != KW_HTTP_PUT) {
      *status = 405;
      return KW_ROUTE_NONE;
    }
    char text[KW_ID_STRLEN + 1];
    if (plen - pre != KW_ID_STRLEN) {
      *status = 400;
      return KW_ROUTE_NONE;
    }
    memcpy(text, path + pre, KW_ID_STRLEN);
    text[KW_ID_STRLEN] = '\0';
    uint8_t tmp[KW_ID_LEN];
    if (kw_id_from_string(text, tmp) != KW_OK) {
      *status = 400;
      return KW_ROUTE_NONE;
    }
    if (!get && !r->has_length) {
      *status = 411;
      return KW_ROUTE_NONE;
    }
    if (id)
      memcpy(id, tmp, KW_ID_LEN);
    *status = 200;
    if (is_pkarr)
      return KW_ROUTE_PKARR_PUT;
    return get ? KW_ROUTE_LOOKUP_GET : KW_ROUTE_LOOKUP_PUT;
  }
  kw__http_route route = KW_ROUTE_NONE;
  if (plen == 8 && memcmp(path, "/metrics", 8) == 0)
    route = KW_ROUTE_METRICS;
  else if (plen == 5 && memcmp(path, "/ping", 5) == 0)
    route = KW_ROUTE_PING;
  if (route == KW_ROUTE_NONE) {
    *status = 404;
    return KW_ROUTE_NONE;
  }
  if (!get) {
    *status = 405;
    return KW_ROUTE_NONE;
  }
  *status = 200;
  return route;
}

const char *kw__http_reason(int status) {
  switch (status) {
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 409:
    return "Conflict";
  case 411:
    return "Length Required";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 426:
    return "Upgrade Required";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 503:
    return "Service Unavailable";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Status";
  }
}

kw_err kw__http_resp_head(int status, const char *content_type, size_t body_len,
                          bool close, char *out, size_t cap, size_t *outlen) {
  if (status < 100 || status > 599 || !out || !outlen)
    return KW_ERR_INVALID_ARG;
  if (content_type)
    for (const char *c = content_type; *c; c++)
      if (!is_line_char((uint8_t)*c))
        return KW_ERR_INVALID_ARG;
  int n = snprintf(out, cap,
                   "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s"
                   "Cache-Control: no-store\r\nConnection: %s\r\n\r\n",
                   status, kw__http_reason(status), body_len,
                   content_type ? "Content-Type: " : "",
                   content_type ? content_type : "", content_type ? "\r\n" : "",
                   close ? "close" : "keep-alive");
  if (n < 0)
    return KW_ERR_INVALID_ARG;
  if ((size_t)n >= cap)
    return KW_ERR_BUFFER;
  *outlen = (size_t)n;
  return KW_OK;
}
