/* SPDX-License-Identifier: MIT */
/* Clocks (net/clock.h). */
#include "net/clock.h"

#include <uv.h>

uint64_t kw__mono_ns(void) { return uv_hrtime(); }

uint64_t kw__unix_us(void) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}
