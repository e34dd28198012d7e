/* SPDX-License-Identifier: MIT */
/* Fuzz the HTTP head parsers and the router. A head that parses ends in a
 * blank line within KW_HTTP_MAX_HEADER bytes and parses the same from its
 * own bytes; incomplete input never exceeds the limit. */
#include <stdint.h>
#include <string.h>

#include "core/http.h"
#include "core/relay_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kw__http_req r, r2;
  kw_err e = kw__http_req_parse(data, size, &r);
  if (e == KW_OK) {
    if (r.header_len < 4 || r.header_len > size ||
        r.header_len > KW_HTTP_MAX_HEADER ||
        memcmp(data + r.header_len - 4, "\r\n\r\n", 4) != 0)
      __builtin_trap();
    if (r.method != KW_HTTP_GET && r.method != KW_HTTP_PUT)
      __builtin_trap();
    if (r.path[0] != '/' || strlen(r.path) > KW_HTTP_MAX_PATH)
      __builtin_trap();
    if (r.has_length && r.content_length > KW_HTTP_MAX_BODY)
      __builtin_trap();
    if (kw__http_req_parse(data, r.header_len, &r2) != KW_OK ||
        r2.header_len != r.header_len || strcmp(r.path, r2.path) != 0 ||
        r2.upgrade != r.upgrade || r2.content_length != r.content_length)
      __builtin_trap();
    uint8_t id[KW_ID_LEN];
    int st = 0;
    kw__http_route route = kw__http_route_req(&r, id, &st);
    if (route == KW_ROUTE_NONE ? (st < 400 || st > 499)
                               : (st != 200 && st != 101))
      __builtin_trap();
    if (route == KW_ROUTE_RELAY && !r.upgrade)
      __builtin_trap();
  } else if (e == KW_ERR_AGAIN) {
    if (size >= KW_HTTP_MAX_HEADER)
      __builtin_trap();
  } else if (e == KW_ERR_PARSE) {
    if (r.status < 400 || r.status > 599)
      __builtin_trap();
  } else {
    __builtin_trap();
  }

  kw__http_resp rs;
  e = kw__http_resp_parse(data, size, &rs);
  if (e == KW_OK &&
      (rs.status < 100 || rs.status > 599 || rs.header_len > size ||
       rs.header_len > KW_HTTP_MAX_HEADER))
    __builtin_trap();
  size_t used = 0;
  int status = 0;
  e = kw__relay_http_resp_parse(data, size, &used, &status);
  if (e == KW_OK && (status != 101 || used > size))
    __builtin_trap();
  return 0;
}
