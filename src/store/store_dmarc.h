/* SPDX-License-Identifier: MIT */
/*
 * store_dmarc: DMARC aggregate report data (issue 6).
 *
 * Public operations first, then the table a backend fills in
 * (struct store_dmarc_ops, reached through store_ops.dmarc).
 */
#ifndef MXG_STORE_DMARC_H
#define MXG_STORE_DMARC_H

#include "store/store.h"

/* ---- for backends ------------------------------------------------------ */

struct store_dmarc_ops {
	/* The feature's operations go here. */
	int (*ping)(struct store *st);
};

#endif
