/* DKIM keys for the mailserver plugin (libcrypto). */
#ifndef OPHOOK_MAILSERVER_DKIM_H
#define OPHOOK_MAILSERVER_DKIM_H

#include <stdbool.h>

/* A new RSA key of `bits` bits as PEM (PKCS#8 "PRIVATE KEY") in *pem_r
 * (caller frees).  0 or -errno with *error_r (static text). */
int dkim_keygen(unsigned bits, char **pem_r, const char **error_r);

/* The base64 of the DER SubjectPublicKeyInfo of the PEM private key, what
 * a DKIM record's p= holds.  0 or -errno (-EINVAL: not a key). */
int dkim_pubkey_b64(const char *pem, char **b64_r, const char **error_r);

/* "v=DKIM1; h=sha256; k=rsa; p=<b64>", caller frees; NULL on ENOMEM. */
char *dkim_txt_value(const char *b64);

/* The BIND-style record opendkim-genkey writes to <selector>.txt:
 *   mail._domainkey IN TXT ( "v=DKIM1; h=sha256; k=rsa; " "p=..." ... )
 * with p= split into 250-byte strings; caller frees; NULL on ENOMEM. */
char *dkim_txt_record(const char *selector, const char *domain,
		      const char *b64);

/* A selector: 1-63 bytes of [A-Za-z0-9_-]. */
bool dkim_selector_valid(const char *s);

#endif
