/* SPDX-License-Identifier: MIT */
/*
 * Log lines on stderr: "2024-05-01T12:00:00.123Z info event key=value ..."
 * or, with --json, one JSON object per line:
 * {"ts":"...","level":"info","event":"...","key":"value",...}. Values that
 * are plain integers or decimals become JSON numbers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "relay/relay.h"

static const char *level_name(kw__rs_level l) {
  switch (l) {
  case KW_RS_ERROR:
    return "error";
  case KW_RS_WARN:
    return "warn";
  case KW_RS_INFO:
    return "info";
  default:
    return "debug";
  }
}

static void timestamp(char *out, size_t cap) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static bool is_number(const char *s) {
  if (*s == '-')
    s++;
  if (!*s)
    return false;
  bool dot = false, digit = false;
  for (; *s; s++) {
    if (*s >= '0' && *s <= '9')
      digit = true;
    else if (*s == '.' && !dot)
      dot = true;
    else
      return false;
  }
  return digit;
}

static void add_fields(json_t *o, char *f) {
  char *p = f;
  while (*p) {
    while (*p == ' ')
      p++;
    if (!*p)
      break;
    char *key = p;
    char *eq = strchr(p, '=');
    if (!eq)
      break;
    *eq = 0;
    char *val = eq + 1;
    char *end;
    if (*val == '"') {
      val++;
      end = strchr(val, '"');
      if (!end)
        end = val + strlen(val);
      p = *end ? end + 1 : end;
      *end = 0;
      json_object_set_new(o, key, json_string(val));
      continue;
    }
    end = strchr(val, ' ');
    p = end ? end + 1 : val + strlen(val);
    if (end)
      *end = 0;
    if (is_number(val))
      json_object_set_new(o, key,
                          strchr(val, '.')
                              ? json_real(strtod(val, NULL))
                              : json_integer(strtoll(val, NULL, 10)));
    else if (strcmp(val, "true") == 0 || strcmp(val, "false") == 0)
      json_object_set_new(o, key, json_boolean(val[0] == 't'));
    else
      json_object_set_new(o, key, json_string(val));
  }
}

void kw__rs_log(kw__rs *rs, kw__rs_level lvl, const char *event,
                const char *fields_fmt, ...) {
  int max = KW_RS_INFO + (rs ? rs->cfg.verbosity : 0);
  if ((int)lvl > max)
    return;
  char fields[1024];
  fields[0] = 0;
  if (fields_fmt) {
    va_list ap;
    va_start(ap, fields_fmt);
    vsnprintf(fields, sizeof fields, fields_fmt, ap);
    va_end(ap);
  }
  char ts[40];
  timestamp(ts, sizeof ts);
  if (rs && rs->cfg.json) {
    json_t *o = json_object();
    if (!o)
      return;
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_name(lvl)));
    json_object_set_new(o, "event", json_string(event));
    add_fields(o, fields);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                JSON_REAL_PRECISION(6));
    json_decref(o);
    if (s) {
      fprintf(stderr, "%s\n", s);
      free(s);
    }
  } else {
    fprintf(stderr, "%s %s %s%s%s\n", ts, level_name(lvl), event,
            fields[0] ? " " : "", fields);
  }
}
