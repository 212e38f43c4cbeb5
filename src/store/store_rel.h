/* SPDX-License-Identifier: MIT */
/*
 * store_rel: sender relationships (issue 7).
 *
 * Public operations first, then the table a backend fills in
 * (struct store_rel_ops, reached through store_ops.rel).
 */
#ifndef MXG_STORE_REL_H
#define MXG_STORE_REL_H

#include "store/store.h"

/* ---- for backends ------------------------------------------------------ */

struct store_rel_ops {
	/* The feature's operations go here. */
	int (*ping)(struct store *st);
};

#endif
