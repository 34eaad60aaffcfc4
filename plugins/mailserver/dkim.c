/* DKIM keys for the mailserver plugin: RSA key generation and the public
 * part as the p= of a DKIM TXT record, with libcrypto (OpenSSL 3). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dkim.h"

/* The contents of a memory BIO as a NUL-terminated string. */
static char *dkim_bio_string(BIO *bio)
{
	char *mem = NULL, *s;
	long n = BIO_get_mem_data(bio, &mem);

	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, mem, (size_t)n);
	s[n] = '\0';
	return s;
}

int dkim_keygen(unsigned bits, char **pem_r, const char **error_r)
{
	EVP_PKEY *key;
	BIO *bio;
	int ret = 0;

	*pem_r = NULL;
	if (bits < 1024 || bits > 8192) {
		*error_r = "dkim_bits: want 1024..8192";
		return -EINVAL;
	}
	key = EVP_RSA_gen(bits);
	if (key == NULL) {
		*error_r = "RSA key generation failed (libcrypto)";
		return -EIO;
	}
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL ||
	    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
		*error_r = "cannot write the key as PEM (libcrypto)";
		ret = -EIO;
	} else if ((*pem_r = dkim_bio_string(bio)) == NULL) {
		*error_r = "out of memory";
		ret = -ENOMEM;
	}
	BIO_free(bio);
	EVP_PKEY_free(key);
	return ret;
}

int dkim_pubkey_b64(const char *pem, char **b64_r, const char **error_r)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = NULL;
	unsigned char *der = NULL;
	int len, ret = 0;

	*b64_r = NULL;
	if (bio == NULL) {
		*error_r = "out of memory";
		return -ENOMEM;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		EVP_PKEY_free(key);
		*error_r = "not an RSA private key in PEM";
		return -EINVAL;
	}
	len = i2d_PUBKEY(key, &der);
	EVP_PKEY_free(key);
	if (len <= 0) {
		*error_r = "cannot encode the public key (libcrypto)";
		return -EIO;
	}
	*b64_r = malloc(4 * (((size_t)len + 2) / 3) + 1);
	if (*b64_r == NULL) {
		*error_r = "out of memory";
		ret = -ENOMEM;
	} else {
		EVP_EncodeBlock((unsigned char *)*b64_r, der, len);
	}
	OPENSSL_free(der);
	return ret;
}

char *dkim_txt_value(const char *b64)
{
	char *s;

	if (asprintf(&s, "v=DKIM1; h=sha256; k=rsa; p=%s", b64) < 0)
		return NULL;
	return s;
}

char *dkim_txt_record(const char *selector, const char *domain,
		      const char *b64)
{
	size_t n = strlen(b64), size = 256 + 2 * strlen(selector) +
				       strlen(domain) + n + 8 * (n / 250 + 1);
	char *s = malloc(size), *p;

	if (s == NULL)
		return NULL;
	p = s + snprintf(s, size,
			 "%s._domainkey\tIN\tTXT\t( \"v=DKIM1; h=sha256; "
			 "k=rsa; \"\n\t  \"p=",
			 selector);
	for (size_t off = 0; off < n; off += 250) {
		size_t k = n - off < 250 ? n - off : 250;

		if (off > 0)
			p += sprintf(p, "\"\n\t  \"");
		memcpy(p, b64 + off, k);
		p += k;
	}
	snprintf(p, size - (size_t)(p - s),
		 "\" )  ; ----- DKIM key %s for %s\n", selector, domain);
	return s;
}

bool dkim_selector_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	}
	return true;
}
