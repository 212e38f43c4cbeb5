/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
typedef int mxg_placeholder_t;
