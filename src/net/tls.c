/* SPDX-License-Identifier: MIT */
#include "net/tls.h"

#include <openssl/err.h>

#include "core/util.h"

static SSL_CTX *fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what, const char *file)
{
	char why[256] = "unknown error";
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, why, sizeof(why));
	(void)str_fmt(err, errlen, "%s %s: %s", what, file, why);
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return fail(NULL, err, errlen, "cannot create a TLS context for", cert_file);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				     SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
		return fail(ctx, err, errlen, "cannot load certificate", cert_file);
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
		return fail(ctx, err, errlen, "cannot load private key", key_file);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return fail(ctx, err, errlen, "private key does not match", cert_file);
	return ctx;
}
