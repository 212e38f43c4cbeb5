/* SPDX-License-Identifier: MIT */
/*
 * store_bayes: Bayes token counts (issue 7).
 *
 * Public operations first, then the table a backend fills in
 * (struct store_bayes_ops, reached through store_ops.bayes).
 */
#ifndef MXG_STORE_BAYES_H
#define MXG_STORE_BAYES_H

#include "store/store.h"

/* ---- for backends ------------------------------------------------------ */

struct store_bayes_ops {
	/* The feature's operations go here. */
	int (*ping)(struct store *st);
};

#endif
