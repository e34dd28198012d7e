/* SPDX-License-Identifier: MIT */
/* KRPC messages. See krpc.h. */
#include "core/krpc.h"

#include <string.h>

#include "core/bencode.h"

static const struct {
  const char *name;
  kw__krpc_method m;
} methods[] = {
    {"ping", KW_KRPC_PING},
    {"find_node", KW_KRPC_FIND_NODE},
    {"get", KW_KRPC_GET},
    {"put", KW_KRPC_PUT},
};

static bool fixed(const kw__be_tok *tk, size_t i, size_t n, uint8_t *out) {
  if (!i)
    return false;
  if (tk[i].type != KW_BE_STR || tk[i].slen != n)
    return false;
  memcpy(out, tk[i].s, n);
  return true;
}

/* Optional fixed-size string: absent is fine, present must be right. */
static bool opt_fixed(const kw__be_tok *tk, size_t i, size_t n, uint8_t *out,
                      bool *has) {
  *has = false;
  if (!i)
    return true;
  *has = fixed(tk, i, n, out);
  return *has;
}

static bool opt_str(const kw__be_tok *tk, size_t i, size_t max,
                    const uint8_t **p, size_t *len) {
  *p = NULL;
  *len = 0;
  if (!i)
    return true;
  if (tk[i].type != KW_BE_STR || tk[i].slen > max)
    return false;
  *p = tk[i].s ? tk[i].s : (const uint8_t *)"";
  *len = tk[i].slen;
  return true;
}

static bool opt_int(const kw__be_tok *tk, size_t i, int64_t *v, bool *has) {
  *has = false;
  if (!i)
    return true;
  if (tk[i].type != KW_BE_INT)
    return false;
  *v = tk[i].i;
  *has = true;
  return true;
}

kw_err kw__krpc_decode(const uint8_t *p, size_t len, kw__krpc_msg *m) {
  if (!m || (!p && len))
    return KW_ERR_INVALID_ARG;
  memset(m, 0, sizeof *m);
  if (len > KW_KRPC_MAX_MSG)
    return KW_ERR_PARSE;
  kw__be_tok tk[KW_KRPC_MAX_TOKENS];
  size_t n;
  if (kw__be_parse(p, len, tk, KW_KRPC_MAX_TOKENS, &n) != KW_OK ||
      tk[0].type != KW_BE_DICT)
    return KW_ERR_PARSE;
  size_t t = kw__be_dict_get(tk, 0, "t");
  size_t y = kw__be_dict_get(tk, 0, "y");
  if (!t || tk[t].type != KW_BE_STR || tk[t].slen == 0 ||
      tk[t].slen > KW_KRPC_MAX_TID || !y || tk[y].type != KW_BE_STR ||
      tk[y].slen != 1)
    return KW_ERR_PARSE;
  memcpy(m->t, tk[t].s, tk[t].slen);
  m->tlen = tk[t].slen;
  m->y = (char)tk[y].s[0];
  size_t ro = kw__be_dict_get(tk, 0, "ro");
  if (ro && tk[ro].type == KW_BE_INT && tk[ro].i == 1)
    m->ro = true;
  size_t body;
  switch (m->y) {
  case 'q': {
    size_t q = kw__be_dict_get(tk, 0, "q");
    if (!q || tk[q].type != KW_BE_STR)
      return KW_ERR_PARSE;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
      if (tk[q].slen == strlen(methods[i].name) &&
          memcmp(tk[q].s, methods[i].name, tk[q].slen) == 0)
        m->q = methods[i].m;
    body = kw__be_dict_get(tk, 0, "a");
    break;
  }
  case 'r':
    body = kw__be_dict_get(tk, 0, "r");
    break;
  case 'e': {
    size_t e = kw__be_dict_get(tk, 0, "e");
    if (!e || tk[e].type != KW_BE_LIST || tk[e].n < 2 ||
        tk[e + 1].type != KW_BE_INT)
      return KW_ERR_PARSE;
    size_t s = tk[e + 1].next;
    if (tk[s].type != KW_BE_STR)
      return KW_ERR_PARSE;
    m->err_code = tk[e + 1].i;
    m->err_msg = tk[s].s;
    m->err_len = tk[s].slen;
    return KW_OK;
  }
  default:
    return KW_ERR_PARSE;
  }
  if (!body || tk[body].type != KW_BE_DICT)
    return KW_ERR_PARSE;
  if (!opt_fixed(tk, kw__be_dict_get(tk, body, "id"), 20, m->id, &m->has_id) ||
      !m->has_id ||
      !opt_fixed(tk, kw__be_dict_get(tk, body, "target"), 20, m->target,
                 &m->has_target) ||
      !opt_fixed(tk, kw__be_dict_get(tk, body, "k"), 32, m->k, &m->has_k) ||
      !opt_fixed(tk, kw__be_dict_get(tk, body, "sig"), 64, m->sig,
                 &m->has_sig) ||
      !opt_int(tk, kw__be_dict_get(tk, body, "seq"), &m->seq, &m->has_seq) ||
      !opt_int(tk, kw__be_dict_get(tk, body, "cas"), &m->cas, &m->has_cas) ||
      !opt_str(tk, kw__be_dict_get(tk, body, "token"), KW_KRPC_MAX_TOKEN,
               &m->token, &m->token_len) ||
      !opt_str(tk, kw__be_dict_get(tk, body, "salt"), KW_KRPC_MAX_SALT,
               &m->salt, &m->salt_len) ||
      !opt_str(tk, kw__be_dict_get(tk, body, "nodes"),
               KW_KRPC_MAX_MSG, &m->nodes, &m->nodes_len))
    return KW_ERR_PARSE;
  if (m->nodes_len % KW_KRPC_NODE_LEN)
    return KW_ERR_PARSE;
  size_t v = kw__be_dict_get(tk, body, "v");
  if (v) {
    if (tk[v].len > KW_KRPC_MAX_V)
      return KW_ERR_PARSE;
    m->v = p + tk[v].off;
    m->v_len = tk[v].len;
  }
  if (m->has_seq && m->seq < 0)
    return KW_ERR_PARSE;
  return KW_OK;
}

void kw__krpc_node(const kw__krpc_msg *m, size_t i, uint8_t id[20],
                   kw_sockaddr *addr) {
  const uint8_t *n = m->nodes + i * KW_KRPC_NODE_LEN;
  memcpy(id, n, 20);
  memset(addr, 0, sizeof *addr);
  addr->family = 4;
  memcpy(addr->ip, n + 20, 4);
  addr->port = (uint16_t)((n[24] << 8) | n[25]);
}

kw_err kw__krpc_encode(const kw__krpc_msg *m, uint8_t *out, size_t cap,
                       size_t *outlen) {
  if (!m || !outlen || (!out && cap) || m->tlen == 0 ||
      m->tlen > KW_KRPC_MAX_TID || m->token_len > KW_KRPC_MAX_TOKEN ||
      m->salt_len > KW_KRPC_MAX_SALT || m->v_len > KW_KRPC_MAX_V ||
      m->nodes_len % KW_KRPC_NODE_LEN)
    return KW_ERR_INVALID_ARG;
  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  kw__be_open_dict(&w);
  if (m->y == 'q' || m->y == 'r') {
    const char *qname = NULL;
    if (m->y == 'q') {
      for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (methods[i].m == m->q)
          qname = methods[i].name;
      if (!qname)
        return KW_ERR_INVALID_ARG;
    }
    kw__be_cstr(&w, m->y == 'q' ? "a" : "r");
    kw__be_open_dict(&w); /* keys in order */
    if (m->has_cas) {
      kw__be_cstr(&w, "cas");
      kw__be_int(&w, m->cas);
    }
    kw__be_cstr(&w, "id");
    kw__be_str(&w, m->id, 20);
    if (m->has_k) {
      kw__be_cstr(&w, "k");
      kw__be_str(&w, m->k, 32);
    }
    if (m->nodes) {
      kw__be_cstr(&w, "nodes");
      kw__be_str(&w, m->nodes, m->nodes_len);
    }
    if (m->salt && m->salt_len) {
      kw__be_cstr(&w, "salt");
      kw__be_str(&w, m->salt, m->salt_len);
    }
    if (m->has_seq) {
      kw__be_cstr(&w, "seq");
      kw__be_int(&w, m->seq);
    }
    if (m->has_sig) {
      kw__be_cstr(&w, "sig");
      kw__be_str(&w, m->sig, 64);
    }
    if (m->has_target) {
      kw__be_cstr(&w, "target");
      kw__be_str(&w, m->target, 20);
    }
    if (m->token) {
      kw__be_cstr(&w, "token");
      kw__be_str(&w, m->token, m->token_len);
    }
    if (m->v) {
      kw__be_cstr(&w, "v");
      kw__wbuf_bytes(&w, m->v, m->v_len); /* already bencoded */
    }
    kw__be_close(&w);
    if (m->y == 'q') {
      kw__be_cstr(&w, "q");
      kw__be_cstr(&w, qname);
    }
  } else if (m->y == 'e') {
    kw__be_cstr(&w, "e");
    kw__be_open_list(&w);
    kw__be_int(&w, m->err_code);
    kw__be_str(&w, m->err_msg, m->err_msg ? m->err_len : 0);
    kw__be_close(&w);
  } else {
    return KW_ERR_INVALID_ARG;
  }
  if (m->ro) {
    kw__be_cstr(&w, "ro");
    kw__be_int(&w, 1);
  }
  kw__be_cstr(&w, "t");
  kw__be_str(&w, m->t, m->tlen);
  kw__be_cstr(&w, "y");
  kw__be_str(&w, &m->y, 1);
  kw__be_close(&w);
  if (w.err)
    return KW_ERR_BUFFER;
  *outlen = w.off;
  return KW_OK;
}
