/* SPDX-License-Identifier: MIT */
/* Fuzz the rtnetlink classifier: any bytes give a defined set of bits and
 * never read outside the buffer; classifying a prefix never invents a
 * change the whole batch lacks, apart from the malformed mark. */
#include <stdint.h>

#include "core/nlmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const unsigned all = KW_NL_ADDR | KW_NL_DEFAULT_ROUTE | KW_NL_LINK |
                       KW_NL_OVERRUN | KW_NL_MALFORMED;
  unsigned whole = kw__nl_classify(data, size);
  if (whole & ~all)
    __builtin_trap();
  if (size > 0) {
    unsigned part = kw__nl_classify(data, size / 2);
    if ((part & ~KW_NL_MALFORMED) & ~whole)
      __builtin_trap();
  }
  return 0;
}
