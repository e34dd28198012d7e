/* SPDX-License-Identifier: MIT */
/*
 * pkarr_tool: pkarr items for the DHT tests (tests/integration/test_dht.sh).
 *   pkarr_tool body KEYFILE SEQ_US TTL_S URL [forge]
 *       the PUT /pkarr/<id> body of a record (id from KEYFILE, timestamp
 *       SEQ_US, home relay URL) on stdout; "forge" spoils its BEP 44
 *       signature
 *   pkarr_tool dhtput ADDR:PORT KEYFILE SEQ_US TTL_S URL [forge]
 *       the same item put straight to the DHT node at ADDR:PORT (a KRPC
 *       get for a write token, then put); prints "ok" or "error CODE"
 *   pkarr_tool id KEYFILE     the key's id in text
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/bencode.h"
#include "core/krpc.h"
#include "core/pkarr.h"
#include "core/record.h"
#include "keyway.h"

static int make_body(const char *keyfile, const char *seq, const char *ttl,
                     const char *url, int forge, uint8_t sk[64],
                     uint8_t *body, size_t *bl) {
  if (kw_keyfile_read(keyfile, sk) != KW_OK)
    return 1;
  kw__record r;
  memset(&r, 0, sizeof r);
  memcpy(r.addr.id, sk + 32, 32);
  snprintf(r.addr.relay_url, sizeof r.addr.relay_url, "%s", url);
  r.timestamp_us = strtoull(seq, NULL, 10);
  r.ttl_s = (uint32_t)strtoul(ttl, NULL, 10);
  uint8_t rec[KW_RECORD_MAX_LEN];
  size_t rl;
  if (kw__record_encode(&r, sk, rec, sizeof rec, &rl) != KW_OK ||
      kw__pkarr_body(rec, rl, sk, body, KW_PKARR_MAX_BODY, bl) != KW_OK)
    return 1;
  if (forge)
    body[3] ^= 0x10;
  return 0;
}

static int krpc(int fd, const struct sockaddr_in *to, const kw__krpc_msg *q,
                kw__krpc_msg *r, uint8_t *rbuf) {
  uint8_t buf[KW_KRPC_MAX_MSG];
  size_t n;
  if (kw__krpc_encode(q, buf, sizeof buf, &n) != KW_OK)
    return 1;
  for (int tries = 0; tries < 3; tries++) {
    sendto(fd, buf, n, 0, (const struct sockaddr *)to, sizeof *to);
    ssize_t got = recv(fd, rbuf, KW_KRPC_MAX_MSG, 0);
    if (got > 0 && kw__krpc_decode(rbuf, (size_t)got, r) == KW_OK)
      return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  if (sodium_init() < 0)
    return 1;
  uint8_t sk[64], body[KW_PKARR_MAX_BODY];
  size_t bl;
  if (argc == 3 && !strcmp(argv[1], "id")) {
    char t[KW_ID_STRLEN + 1];
    if (kw_keyfile_read(argv[2], sk) != KW_OK)
      return 1;
    kw_id_to_string(sk + 32, t, sizeof t);
    printf("%s\n", t);
    return 0;
  }
  if ((argc == 6 || argc == 7) && !strcmp(argv[1], "body")) {
    if (make_body(argv[2], argv[3], argv[4], argv[5], argc == 7, sk, body, &bl))
      return 1;
    fwrite(body, 1, bl, stdout);
    return 0;
  }
  if ((argc == 7 || argc == 8) && !strcmp(argv[1], "dhtput")) {
    if (make_body(argv[3], argv[4], argv[5], argv[6], argc == 8, sk, body, &bl))
      return 1;
    kw__pkarr_item it;
    if (argc == 7 && kw__pkarr_body_open(body, bl, sk + 32, &it) != KW_OK)
      return 1;
    if (argc == 8) { /* forged: parse without the check */
      memset(&it, 0, sizeof it);
      memcpy(it.sig, body, 64);
      uint64_t s = strtoull(argv[4], NULL, 10);
      it.seq = (int64_t)s;
      it.v_len = kw__pkarr_value(body + 72, bl - 72, it.v, sizeof it.v);
    }
    kw_sockaddr a;
    if (kw_sockaddr_parse(argv[2], &a) != KW_OK || a.family != 4)
      return 2;
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    memcpy(&to.sin_addr, a.ip, 4);
    to.sin_port = htons(a.port);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    kw__krpc_msg q, r;
    uint8_t rbuf[KW_KRPC_MAX_MSG];
    memset(&q, 0, sizeof q);
    memcpy(q.t, "g1", 2);
    q.tlen = 2;
    q.y = 'q';
    q.q = KW_KRPC_GET;
    q.has_id = q.has_target = true;
    randombytes_buf(q.id, 20);
    memset(q.target, 0x42, 20); /* any target gives a write token */
    if (krpc(fd, &to, &q, &r, rbuf) || r.y != 'r' || !r.token) {
      printf("no token\n");
      return 1;
    }
    uint8_t token[KW_KRPC_MAX_TOKEN];
    size_t tl = r.token_len;
    memcpy(token, r.token, tl);
    q.q = KW_KRPC_PUT;
    memcpy(q.t, "p1", 2);
    q.has_target = false;
    q.token = token;
    q.token_len = tl;
    q.has_k = q.has_sig = q.has_seq = true;
    memcpy(q.k, sk + 32, 32);
    memcpy(q.sig, it.sig, 64);
    q.seq = it.seq;
    q.v = it.v;
    q.v_len = it.v_len;
    if (krpc(fd, &to, &q, &r, rbuf)) {
      printf("no answer\n");
      return 1;
    }
    if (r.y == 'e')
      printf("error %lld\n", (long long)r.err_code);
    else
      printf("ok\n");
    close(fd);
    return 0;
  }
  fprintf(stderr, "usage: see the head of pkarr_tool.c\n");
  return 2;
}
