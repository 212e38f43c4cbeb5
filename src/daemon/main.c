/* SPDX-License-Identifier: MIT */
/*
 * mxguardd: the mxguard daemon. See master.h for the process model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "daemon/master.h"
#include "net/resolver.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: mxguardd [-c CONFIG] [-t]\n"
		   "  -c CONFIG  node configuration (default /etc/mxguard/mxguard.conf)\n"
		   "  -t         check the configuration and exit\n"
		   "  -V         print the version\n");
}

int main(int argc, char **argv)
{
	const char *path = "/etc/mxguard/mxguard.conf";
	static struct config cfg;
	char err[1024];
	int opt, check = 0;

	while ((opt = getopt(argc, argv, "c:thV")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("mxguardd %s\n", MXG_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "mxguardd: %s\n", err);
		return 2;
	}
	if (check) {
		printf("%s: ok\n", path);
		return 0;
	}
	log_init("master", (enum log_level)cfg.log.level);
	if (resolver_global_init() < 0) {
		fprintf(stderr, "mxguardd: cannot initialise the DNS library\n");
		return 1;
	}
	return master_run(&cfg);
}
