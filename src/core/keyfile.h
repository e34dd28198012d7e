/* SPDX-License-Identifier: MIT */
/*
 * Key file text (sans-IO). The format:
 *
 *   # keyway secret key: keep it private
 *   keyway-secret-key-v1 <52-char base32 of the 32-byte Ed25519 seed>
 *
 * Comment lines (first non-blank character '#') and blank lines are
 * ignored; exactly one key line is required. Lines may end in LF or CRLF.
 * src/endpoint/keyfile.c does the file system part.
 */
#ifndef KW_CORE_KEYFILE_H
#define KW_CORE_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "keyway.h"

#define KW__KEYFILE_HEADER "# keyway secret key: keep it private\n"
#define KW__KEYFILE_TAG "keyway-secret-key-v1"
/* Largest key file accepted (reading refuses bigger files). */
#define KW__KEYFILE_MAX 4096
/* Length of the text kw__keyfile_format writes, without NUL. */
#define KW__KEYFILE_TEXTLEN                                                    \
  (sizeof(KW__KEYFILE_HEADER) - 1 + sizeof(KW__KEYFILE_TAG) - 1 + 1 + 52 + 1)

/* Writes the key file text of `sk` (NUL-terminated) into `out`. Errors:
 * KW_ERR_BUFFER if outlen <= KW__KEYFILE_TEXTLEN. */
kw_err kw__keyfile_format(const uint8_t sk[KW_SECRET_KEY_LEN], char *out,
                          size_t outlen);

/* Parses key file text of `len` bytes (at most KW__KEYFILE_MAX) into the
 * secret key `sk`, derived from the seed. KW_ERR_KEYFILE for anything
 * malformed: no key line, two key lines, a line that is neither blank,
 * comment nor key, bad base32, a NUL byte. */
kw_err kw__keyfile_parse(const char *text, size_t len,
                         uint8_t sk[KW_SECRET_KEY_LEN]);

#endif /* KW_CORE_KEYFILE_H */
