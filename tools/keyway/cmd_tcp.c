/* keyway listen-tcp / connect-tcp (placeholder, filled below). */
#include "common.h"
int cmd_listen_tcp(cli *c) { return cli_usage_error(c, "not yet"); }
int cmd_connect_tcp(cli *c) { return cli_usage_error(c, "not yet"); }
