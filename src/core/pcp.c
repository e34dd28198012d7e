/* SPDX-License-Identifier: MIT */
/* PCP (RFC 6887) MAP and ANNOUNCE messages. See pcp.h. */
#include "core/pcp.h"

#include <string.h>

#include <sodium.h>

#include "core/buf.h"

static const char *const result_names[] = {
    "SUCCESS",           "UNSUPP_VERSION",         "NOT_AUTHORIZED",
    "MALFORMED_REQUEST", "UNSUPP_OPCODE",          "UNSUPP_OPTION",
    "MALFORMED_OPTION",  "NETWORK_FAILURE",        "NO_RESOURCES",
    "UNSUPP_PROTOCOL",   "USER_EX_QUOTA",          "CANNOT_PROVIDE_EXTERNAL",
    "ADDRESS_MISMATCH",  "EXCESSIVE_REMOTE_PEERS",
};

const char *kw__pcp_result_name(int code) {
  if (code < 0 || (size_t)code >= sizeof result_names / sizeof result_names[0])
    return "UNKNOWN";
  return result_names[code];
}

const char *kw_pcp_result_name(int code) { return kw__pcp_result_name(code); }

bool kw__pcp_result_transient(int code) {
  return code == KW_PCP_NETWORK_FAILURE || code == KW_PCP_NO_RESOURCES ||
         code == KW_PCP_USER_EX_QUOTA || code == KW_PCP_EXCESSIVE_REMOTE_PEERS;
}

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* A 16-byte address field: IPv4 as ::ffff:a.b.c.d; family 0 as the IPv4
 * all-zeros address ::ffff:0.0.0.0 (section 11.1: "no preference"). */
static void put_addr(kw__wbuf *w, const kw_sockaddr *a) {
  if (a && a->family == 6) {
    kw__wbuf_bytes(w, a->ip, 16);
    return;
  }
  kw__wbuf_bytes(w, v4mapped, sizeof v4mapped);
  static const uint8_t zero4[4] = {0};
  kw__wbuf_bytes(w, a && a->family == 4 ? a->ip : zero4, 4);
}

static void get_addr(kw__rbuf *r, kw_sockaddr *a) {
  uint8_t b[16];
  kw__rbuf_copy(r, b, sizeof b);
  memset(a, 0, sizeof *a);
  if (memcmp(b, v4mapped, sizeof v4mapped) == 0) {
    a->family = 4;
    memcpy(a->ip, b + 12, 4);
  } else {
    a->family = 6;
    memcpy(a->ip, b, 16);
  }
}

static void put_header(kw__wbuf *w, uint8_t opcode, uint32_t lifetime,
                       const kw_sockaddr *client) {
  kw__wbuf_u8(w, KW_PCP_VERSION);
  kw__wbuf_u8(w, opcode & 0x7f); /* R = 0: a request */
  kw__wbuf_u16(w, 0);            /* reserved */
  kw__wbuf_u32(w, lifetime);
  put_addr(w, client);
}

static bool addr_ok(const kw_sockaddr *a) {
  return a && (a->family == 4 || a->family == 6);
}

kw_err kw__pcp_encode_map(const kw__pcp_map_req *req, uint8_t *out, size_t cap,
                          size_t *outlen) {
  if (!req || !out || !outlen || !addr_ok(&req->client_ip) ||
      (req->suggested_ip.family != 0 && !addr_ok(&req->suggested_ip)) ||
      (req->protocol == 0) != (req->internal_port == 0))
    return KW_ERR_INVALID_ARG;
  *outlen = 0;
  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  put_header(&w, KW_PCP_OP_MAP, req->lifetime_s, &req->client_ip);
  kw__wbuf_bytes(&w, req->nonce, KW_PCP_NONCE_LEN);
  kw__wbuf_u8(&w, req->protocol);
  kw__wbuf_u8(&w, 0); /* reserved, 24 bits */
  kw__wbuf_u16(&w, 0);
  kw__wbuf_u16(&w, req->internal_port);
  kw__wbuf_u16(&w, req->suggested_port);
  put_addr(&w, req->suggested_ip.family ? &req->suggested_ip : NULL);
  if (w.err)
    return KW_ERR_BUFFER;
  *outlen = w.off;
  return KW_OK;
}

kw_err kw__pcp_encode_announce(const kw_sockaddr *client_ip, uint8_t *out,
                               size_t cap, size_t *outlen) {
  if (!out || !outlen || !addr_ok(client_ip))
    return KW_ERR_INVALID_ARG;
  *outlen = 0;
  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  put_header(&w, KW_PCP_OP_ANNOUNCE, 0, client_ip);
  if (w.err)
    return KW_ERR_BUFFER;
  *outlen = w.off;
  return KW_OK;
}

/* Walks the options after the payload: each is code, reserved, a 16-bit
 * length and that many bytes padded to a multiple of 4, and together they
 * fill the message exactly. Known codes must have their fixed lengths. */
static bool walk_options(kw__rbuf *r, kw__pcp_response *out) {
  while (kw__rbuf_left(r) > 0) {
    uint8_t code = kw__rbuf_u8(r);
    (void)kw__rbuf_u8(r);
    uint16_t olen = kw__rbuf_u16(r);
    size_t padded = ((size_t)olen + 3u) & ~(size_t)3u;
    if (r->err || kw__rbuf_take(r, padded) == NULL)
      return false;
    out->n_options++;
    switch (code) {
    case KW_PCP_OPT_THIRD_PARTY:
      if (olen != 16)
        return false;
      out->third_party = true;
      break;
    case KW_PCP_OPT_PREFER_FAILURE:
      if (olen != 0)
        return false;
      out->prefer_failure = true;
      break;
    case KW_PCP_OPT_FILTER:
      if (olen != 20)
        return false;
      out->filter = true;
      break;
    default:
      if (code < 128)
        out->unknown_mandatory = true;
      break;
    }
  }
  return !r->err;
}

kw_err kw__pcp_decode_response(const uint8_t *p, size_t len,
                               kw__pcp_response *out) {
  if (!p || !out)
    return KW_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  /* NAT-PMP's answer to a version it does not speak (RFC 6886 3.5):
   * version 0, opcode 128 + ours, result 1, epoch: 8 bytes (a longer
   * NAT-PMP answer is no better for us) */
  if (len >= 8 && len <= 16 && p[0] == 0 && (p[1] & KW_PCP_R_BIT)) {
    out->version = 0;
    out->opcode = p[1] & 0x7f;
    out->result = p[3]; /* NAT-PMP's result is 16 bits: the low byte */
    out->epoch_s = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
                   (uint32_t)p[6] << 8 | p[7];
    return p[2] == 0 ? KW_ERR_UNSUPPORTED : KW_ERR_PARSE;
  }
  if (len < KW_PCP_HEADER_LEN || len > KW_PCP_MAX_MSG || (len & 3) != 0)
    return KW_ERR_PARSE;
  kw__rbuf r;
  kw__rbuf_init(&r, p, len);
  uint8_t version = kw__rbuf_u8(&r);
  uint8_t op = kw__rbuf_u8(&r);
  (void)kw__rbuf_u8(&r); /* reserved: ignored on receipt (section 7.2) */
  uint8_t result = kw__rbuf_u8(&r);
  uint32_t lifetime = kw__rbuf_u32(&r);
  uint32_t epoch = kw__rbuf_u32(&r);
  (void)kw__rbuf_take(&r, 12); /* reserved */
  if (r.err || !(op & KW_PCP_R_BIT))
    return KW_ERR_PARSE;
  if (version != KW_PCP_VERSION) {
    if (version == 0)
      return KW_ERR_PARSE; /* NAT-PMP, but not the short answer above */
    out->version = version;
    out->opcode = op & 0x7f;
    out->result = result;
    out->lifetime_s = lifetime;
    out->epoch_s = epoch;
    return KW_ERR_UNSUPPORTED;
  }
  kw__pcp_response res;
  memset(&res, 0, sizeof res);
  res.version = version;
  res.opcode = op & 0x7f;
  res.result = result;
  res.lifetime_s = lifetime;
  res.epoch_s = epoch;
  switch (res.opcode) {
  case KW_PCP_OP_ANNOUNCE:
    break;
  case KW_PCP_OP_MAP:
    if (kw__rbuf_left(&r) == 0 && result != KW_PCP_SUCCESS)
      break; /* header-only error answer */
    if (kw__rbuf_left(&r) < KW_PCP_MAP_PAYLOAD_LEN)
      return KW_ERR_PARSE;
    res.has_map = true;
    kw__rbuf_copy(&r, res.nonce, KW_PCP_NONCE_LEN);
    res.protocol = kw__rbuf_u8(&r);
    (void)kw__rbuf_take(&r, 3); /* reserved */
    res.internal_port = kw__rbuf_u16(&r);
    uint16_t ext_port = kw__rbuf_u16(&r);
    get_addr(&r, &res.external);
    res.external.port = ext_port;
    break;
  default:
    return KW_ERR_PARSE; /* PEER and others: never asked */
  }
  if (r.err || !walk_options(&r, &res))
    return KW_ERR_PARSE;
  *out = res;
  return KW_OK;
}

kw_err kw__pcp_encode_response(const kw__pcp_response *res, uint8_t *out,
                               size_t cap, size_t *outlen) {
  if (!res || !out || !outlen ||
      (res->opcode != KW_PCP_OP_ANNOUNCE && res->opcode != KW_PCP_OP_MAP))
    return KW_ERR_INVALID_ARG;
  *outlen = 0;
  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  kw__wbuf_u8(&w, res->version);
  kw__wbuf_u8(&w, (uint8_t)(res->opcode | KW_PCP_R_BIT));
  kw__wbuf_u8(&w, 0);
  kw__wbuf_u8(&w, res->result);
  kw__wbuf_u32(&w, res->lifetime_s);
  kw__wbuf_u32(&w, res->epoch_s);
  static const uint8_t zero12[12] = {0};
  kw__wbuf_bytes(&w, zero12, sizeof zero12);
  if (res->opcode == KW_PCP_OP_MAP && res->has_map) {
    kw__wbuf_bytes(&w, res->nonce, KW_PCP_NONCE_LEN);
    kw__wbuf_u8(&w, res->protocol);
    kw__wbuf_u8(&w, 0);
    kw__wbuf_u16(&w, 0);
    kw__wbuf_u16(&w, res->internal_port);
    kw__wbuf_u16(&w, res->external.port);
    put_addr(&w, &res->external);
  }
  if (w.err)
    return KW_ERR_BUFFER;
  *outlen = w.off;
  return KW_OK;
}

/* An external IPv4 address a peer could send to. */
static bool usable_v4(const uint8_t ip[4]) {
  if (ip[0] == 0 || ip[0] == 127 || ip[0] >= 224) /* 0/8, loopback, mc+ */
    return false;
  return true;
}

kw__pcp_match kw__pcp_check_map(const kw__pcp_response *r,
                                const kw__pcp_map_req *req, const char **why) {
  const char *dummy;
  if (!why)
    why = &dummy;
  *why = "";
  if (!r || !req || r->opcode != KW_PCP_OP_MAP) {
    *why = "opcode";
    return KW_PCP_MATCH_NOT_OURS;
  }
  if (!r->has_map) {
    if (r->result == KW_PCP_UNSUPP_VERSION ||
        r->result == KW_PCP_MALFORMED_REQUEST)
      return KW_PCP_MATCH_ERROR;
    *why = "nonce";
    return KW_PCP_MATCH_NOT_OURS;
  }
  if (sodium_memcmp(r->nonce, req->nonce, KW_PCP_NONCE_LEN) != 0) {
    *why = "nonce";
    return KW_PCP_MATCH_NOT_OURS;
  }
  if (r->protocol != req->protocol) {
    *why = "protocol";
    return KW_PCP_MATCH_NOT_OURS;
  }
  if (r->internal_port != req->internal_port) {
    *why = "internal-port";
    return KW_PCP_MATCH_NOT_OURS;
  }
  if (r->result != KW_PCP_SUCCESS)
    return KW_PCP_MATCH_ERROR;
  if (r->third_party || r->unknown_mandatory) {
    *why = "option";
    return KW_PCP_MATCH_BAD_GRANT;
  }
  if (req->lifetime_s == 0) {
    if (r->lifetime_s != 0) {
      *why = "lifetime";
      return KW_PCP_MATCH_BAD_GRANT;
    }
    return KW_PCP_MATCH_DELETED;
  }
  if (r->lifetime_s == 0) {
    *why = "lifetime";
    return KW_PCP_MATCH_BAD_GRANT;
  }
  if (r->external.port == 0 && req->protocol != 0) {
    *why = "port";
    return KW_PCP_MATCH_BAD_GRANT;
  }
  bool want4 = req->client_ip.family == 4;
  if (want4 && (r->external.family != 4 || !usable_v4(r->external.ip))) {
    *why = "address";
    return KW_PCP_MATCH_BAD_GRANT;
  }
  if (!want4) {
    static const uint8_t zero16[16] = {0};
    if (r->external.family != 6 || memcmp(r->external.ip, zero16, 16) == 0 ||
        r->external.ip[0] == 0xff) {
      *why = "address";
      return KW_PCP_MATCH_BAD_GRANT;
    }
  }
  return KW_PCP_MATCH_GRANTED;
}

uint32_t kw__pcp_retransmit_ms(uint32_t prev_ms, unsigned rand_permille) {
  if (rand_permille > 200)
    rand_permille = 200;
  uint64_t base;
  if (prev_ms == 0)
    base = KW_PCP_IRT_MS;
  else
    base = (uint64_t)prev_ms * 2u;
  uint64_t rt = base * (900u + rand_permille) / 1000u;
  if (rt > KW_PCP_MRT_MS)
    rt = (uint64_t)KW_PCP_MRT_MS * (900u + rand_permille) / 1000u;
  return (uint32_t)rt;
}

bool kw__pcp_epoch_update(kw__pcp_epoch *e, uint64_t now_ms,
                          uint32_t server_s) {
  if (!e)
    return false;
  bool ok = true;
  if (e->have) {
    int64_t server_delta = (int64_t)server_s - (int64_t)e->server_s;
    int64_t client_delta =
        now_ms >= e->client_ms ? (int64_t)((now_ms - e->client_ms) / 1000u) : 0;
    if (server_delta < -1)
      ok = false;
    else if (client_delta + 2 < server_delta - server_delta / 16 ||
             server_delta + 2 < client_delta - client_delta / 16)
      ok = false;
  }
  e->have = true;
  e->client_ms = now_ms;
  e->server_s = server_s;
  return ok;
}
