/* SPDX-License-Identifier: MIT */
/*
 * master: the supervising process of mxguardd (nginx / rspamd model).
 *
 * It binds every listening socket, prepares the store (schema
 * migrations), maps the shared metrics page, drops to the unprivileged
 * user, then forks and supervises the workers: smtp (one per core by
 * default), one delivery, one http. A worker that dies is restarted (with
 * a back-off if it keeps dying). SIGHUP re-reads the configuration and
 * replaces every worker with a new one while the old ones drain; SIGTERM
 * and SIGINT drain every worker and exit.
 */
#ifndef MXG_MASTER_H
#define MXG_MASTER_H

#include "core/config.h"

/* Runs until shut down; returns the process exit code. cfg is the parsed
 * configuration; its path is re-read on SIGHUP. */
int master_run(const struct config *cfg);

#endif
