/* SPDX-License-Identifier: MIT */
/* RFC 3489 Binding answers. See stun_classic.h. */
#include "core/stun_classic.h"

#include "core/buf.h"
#include "core/stun.h"

kw_err kw__stun_classic_serve(const uint8_t *req, size_t len,
                              const kw_sockaddr *from, uint8_t *out, size_t cap,
                              size_t *outlen) {
  if (!req || !from || !out || !outlen ||
      (from->family != 4 && from->family != 6))
    return KW_ERR_INVALID_ARG;
  *outlen = 0;
  if (len < KW_STUN_HEADER_LEN || (req[0] & 0xC0) != 0)
    return KW_ERR_PARSE;
  kw__rbuf r;
  kw__rbuf_init(&r, req, len);
  uint16_t type = kw__rbuf_u16(&r);
  uint16_t mlen = kw__rbuf_u16(&r);
  const uint8_t *txid = kw__rbuf_take(&r, KW_STUN_CLASSIC_TXID_LEN);
  if (r.err || type != KW_STUN_BINDING_REQUEST ||
      (size_t)mlen != len - KW_STUN_HEADER_LEN || (mlen & 3) != 0)
    return KW_ERR_PARSE;
  uint32_t cookie = (uint32_t)txid[0] << 24 | (uint32_t)txid[1] << 16 |
                    (uint32_t)txid[2] << 8 | txid[3];
  if (cookie == KW_STUN_MAGIC)
    return KW_ERR_PARSE; /* RFC 8489: core/stun's business */
  while (kw__rbuf_left(&r) > 0) {
    uint16_t at = kw__rbuf_u16(&r);
    uint16_t al = kw__rbuf_u16(&r);
    const uint8_t *v = kw__rbuf_take(&r, al);
    if (r.err)
      return KW_ERR_PARSE;
    if (at == KW_STUN_CLASSIC_CHANGE_REQUEST) {
      if (al != 4)
        return KW_ERR_PARSE;
      if ((v[3] & 0x06) != 0)
        return KW_ERR_UNSUPPORTED;
    }
  }
  size_t alen = from->family == 4 ? 4 : 16;
  kw__wbuf w;
  kw__wbuf_init(&w, out, cap);
  kw__wbuf_u16(&w, KW_STUN_BINDING_SUCCESS);
  kw__wbuf_u16(&w, (uint16_t)(4 + 4 + alen));
  kw__wbuf_bytes(&w, txid, KW_STUN_CLASSIC_TXID_LEN);
  kw__wbuf_u16(&w, KW_STUN_ATTR_MAPPED_ADDRESS);
  kw__wbuf_u16(&w, (uint16_t)(4 + alen));
  kw__wbuf_u8(&w, 0);
  kw__wbuf_u8(&w, from->family == 4 ? 1 : 2);
  kw__wbuf_u16(&w, from->port);
  kw__wbuf_bytes(&w, from->ip, alen);
  if (w.err)
    return KW_ERR_BUFFER;
  *outlen = w.off;
  return KW_OK;
}
