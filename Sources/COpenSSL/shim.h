// SPDX-License-Identifier: Apache-2.0
// Thin wrappers over OpenSSL's libcrypto for the one Swift module that imports it
// (Cryptography). Only what Swift cannot call directly lives here: function-like macros,
// variadic functions and the typed stack helpers.
#ifndef EXHIBIT_COPENSSL_SHIM_H
#define EXHIBIT_COPENSSL_SHIM_H

// The low-level MD5/SHA contexts are deprecated in OpenSSL 3 but are the only way to save a
// digest's running state (EVP contexts are opaque); Exhibit journals that state so an interrupted
// acquisition can resume without trusting or re-reading what it already wrote.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/core_names.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/md5.h>
#include <openssl/sha.h>
#include <string.h>

/// A running MD5, SHA-1 or SHA-256 whose state is plain bytes (saved in job journals).
typedef struct {
    int algorithm; /* 0 = SHA-256, 1 = SHA-1, 2 = MD5 */
    union {
        SHA256_CTX sha256;
        SHA_CTX sha1;
        MD5_CTX md5;
    } context;
} exhibit_digest_state;

static inline int exhibit_digest_init(exhibit_digest_state *state, int algorithm) {
    memset(state, 0, sizeof *state);
    state->algorithm = algorithm;
    switch (algorithm) {
    case 0: return SHA256_Init(&state->context.sha256);
    case 1: return SHA1_Init(&state->context.sha1);
    case 2: return MD5_Init(&state->context.md5);
    default: return 0;
    }
}

static inline int exhibit_digest_update(exhibit_digest_state *state, const void *data, size_t length) {
    switch (state->algorithm) {
    case 0: return SHA256_Update(&state->context.sha256, data, length);
    case 1: return SHA1_Update(&state->context.sha1, data, length);
    case 2: return MD5_Update(&state->context.md5, data, length);
    default: return 0;
    }
}

static inline int exhibit_digest_final(exhibit_digest_state *state, unsigned char *output) {
    switch (state->algorithm) {
    case 0: return SHA256_Final(output, &state->context.sha256);
    case 1: return SHA1_Final(output, &state->context.sha1);
    case 2: return MD5_Final(output, &state->context.md5);
    default: return 0;
    }
}

/// SHA-256's intermediate hash value H(i) (FIPS 180-4, 6.2) once a whole number of blocks is
/// hashed: the eight words big-endian, 32 bytes. 0 when the state is not SHA-256 or is mid-block.
static inline int exhibit_digest_chain(const exhibit_digest_state *state, unsigned char *output) {
    if (state->algorithm != 0 || state->context.sha256.num != 0) return 0;
    for (int word = 0; word < 8; word++) {
        unsigned int value = state->context.sha256.h[word];
        output[4 * word] = (unsigned char)(value >> 24);
        output[4 * word + 1] = (unsigned char)(value >> 16);
        output[4 * word + 2] = (unsigned char)(value >> 8);
        output[4 * word + 3] = (unsigned char)value;
    }
    return 1;
}

/// EVP_PKEY_Q_keygen is variadic; this generates an ECDSA key on NIST P-256.
static inline EVP_PKEY *exhibit_generate_p256_key(void) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/// An RSA key (ADB's host key is RSA-2048, e = 65537); EVP_PKEY_Q_keygen is variadic.
static inline EVP_PKEY *exhibit_generate_rsa_key(size_t bits) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
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
