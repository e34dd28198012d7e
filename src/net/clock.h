/* SPDX-License-Identifier: MIT */
/*
 * Clocks of the transport layer (docs/ARCHITECTURE.md section 1): the only
 * place src/net and its users read time. Core never reads a clock; its
 * callers pass these values in.
 */
#ifndef KW_NET_CLOCK_H
#define KW_NET_CLOCK_H

#include <stdint.h>

/* Monotonic time in nanoseconds (uv_hrtime). */
uint64_t kw__mono_ns(void);
/* Wall-clock unix time in microseconds (records, disco timestamps). */
uint64_t kw__unix_us(void);

#endif /* KW_NET_CLOCK_H */
