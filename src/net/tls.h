/* SPDX-License-Identifier: MIT */
/*
 * tls: the server-side TLS context for inbound STARTTLS (RFC 3207).
 *
 * Built by the master before it drops privileges, so the private key may
 * be readable by root only; the workers inherit the context through
 * fork() and never open the key file themselves. TLS 1.2 and 1.3 only,
 * OpenSSL's default cipher choice, no compression, no renegotiation.
 */
#ifndef MXG_TLS_H
#define MXG_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Returns the context or NULL with a reason (file and OpenSSL error). */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

#endif
