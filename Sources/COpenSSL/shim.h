// SPDX-License-Identifier: Apache-2.0
// Thin wrappers over OpenSSL's libcrypto for the one Swift module that imports it
// (Cryptography). Only what Swift cannot call directly lives here: function-like macros,
// variadic functions and the typed stack helpers.
#ifndef EXHIBIT_COPENSSL_SHIM_H
#define EXHIBIT_COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/// EVP_PKEY_Q_keygen is variadic; this generates an ECDSA key on NIST P-256.
static inline EVP_PKEY *exhibit_generate_p256_key(void) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/// BIO_get_mem_data is a macro.
static inline long exhibit_bio_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

static inline void exhibit_openssl_free(void *pointer) {
    OPENSSL_free(pointer);
}

static inline STACK_OF(X509) *exhibit_x509_stack_new(void) {
    return sk_X509_new_null();
}

static inline int exhibit_x509_stack_push(STACK_OF(X509) *stack, X509 *certificate) {
    return sk_X509_push(stack, certificate);
}

static inline int exhibit_x509_stack_count(const STACK_OF(X509) *stack) {
    return sk_X509_num(stack);
}

static inline X509 *exhibit_x509_stack_value(const STACK_OF(X509) *stack, int index) {
    return sk_X509_value(stack, index);
}

/// Frees the stack only; the certificates it points to stay owned by their callers.
static inline void exhibit_x509_stack_free_shallow(STACK_OF(X509) *stack) {
    sk_X509_free(stack);
}

/// Frees the stack and every certificate in it.
static inline void exhibit_x509_stack_free_deep(STACK_OF(X509) *stack) {
    sk_X509_pop_free(stack, X509_free);
}

/// XN_FLAG_RFC2253 is a macro built from casts that Swift does not import.
static inline unsigned long exhibit_name_flags_rfc2253(void) {
    return XN_FLAG_RFC2253;
}

#endif
