/* SPDX-License-Identifier: MIT */
/* Fuzz the pkarr DNS packet reader and the PUT /pkarr body reader. The
 * input is tried as a packet of a fixed test id (the record signature is
 * then almost never right, so the parser behind it is what runs) and as a
 * body. A packet that yields a record is regenerated from that record and
 * must yield the same record again. */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "core/pkarr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t sk[KW_SECRET_KEY_LEN], pk[KW_ID_LEN];
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ready) {
    if (sodium_init() < 0)
      return 0;
    uint8_t seed[32];
    memset(seed, 7, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    ready = 1;
  }
  uint8_t rec[KW_RECORD_MAX_LEN], rec2[KW_RECORD_MAX_LEN];
  size_t rl, rl2;
  kw__record r;
  kw_err e = kw__pkarr_record(data, size, pk, 1, rec, sizeof rec, &rl, &r);
  if (e == KW_OK) {
    uint8_t pkt[KW_PKARR_MAX_PACKET];
    size_t pl;
    if (kw__pkarr_packet(rec, rl, pkt, sizeof pkt, &pl) == KW_OK &&
        (kw__pkarr_record(pkt, pl, pk, 1, rec2, sizeof rec2, &rl2, NULL) !=
             KW_OK ||
         rl2 != rl || memcmp(rec, rec2, rl) != 0))
      __builtin_trap();
  } else if (e != KW_ERR_PARSE && e != KW_ERR_KEY_MISMATCH) {
    __builtin_trap();
  }
  kw__pkarr_item it;
  e = kw__pkarr_body_open(data, size, pk, &it);
  if (e == KW_OK)
    (void)kw__pkarr_record(it.packet, it.packet_len, pk, it.seq, rec,
                           sizeof rec, &rl, NULL);
  return 0;
}
