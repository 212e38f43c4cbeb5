/* SPDX-License-Identifier: MIT */
/*
 * store_dkim: DKIM signing keys per domain (issue 6).
 *
 * Public operations first, then the table a backend fills in
 * (struct store_dkim_ops, reached through store_ops.dkim).
 */
#ifndef MXG_STORE_DKIM_H
#define MXG_STORE_DKIM_H

#include "store/store.h"

/* ---- for backends ------------------------------------------------------ */

struct store_dkim_ops {
	/* The feature's operations go here. */
	int (*ping)(struct store *st);
};

#endif
