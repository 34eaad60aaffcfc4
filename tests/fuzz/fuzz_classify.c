/* libFuzzer target for the classifier (not built by automake):
 *   clang -g -fsanitize=fuzzer,address,undefined -Icore/lib -Icore/sources -Iinclude \
 *     tests/fuzz/fuzz_classify.c core/sources/classify.c core/lib/util.c \
 *     $(pkg-config --cflags --libs jansson libcrypto) -o fuzz_classify
 * The first byte picks the kind of file (index into paths[]), the rest is
 * its content (and the .crt next to a certificate .json); then the same
 * file half as long, then deleted.  The
 * previous facts are the facts of the same content parsed once before, so
 * the diff paths run too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"

static const char *const paths[] = {
	"/etc/openpanel/caddy/domains/a.example.com.conf",
	"/etc/openpanel/caddy/ssl/certificates/local/a.com/a.com.json",
	"/etc/openpanel/caddy/ssl/custom/a.com/fullchain.pem",
	"/etc/openpanel/openpanel/core/users/bob",
	"/etc/openpanel/caddy/deny/bob.ips",
	"/etc/openpanel/openpanel/conf/openpanel.config",
	"/etc/bind/zones/a.com.zone",
	"/etc/bind/named.conf.local",
	"/m/postfix-accounts.cf",
	"/m/postfix-virtual.cf",
	"/m/dovecot-quotas.cf",
	"/etc/openpanel/caddy/ssl/certificates/local/wildcard_.a.com/wildcard_.a.com.json",
	"/etc/openpanel/ftp/users/bob/users.list",
	"/home/bob/crons.ini",
	"/home/bob/backup.env",
	"/var/log/openpanel/admin/notifications.log",
};

static const struct classify_roots roots = {
	"/etc/openpanel", "/home", "/var/log/openpanel/admin/notifications.log"
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct classify_target t;
	struct classify_result r1 = { 0 }, r2 = { 0 };
	const char *why, *path;
	char *content;

	if (size < 1)
		return 0;
	path = paths[data[0] % (sizeof(paths) / sizeof(paths[0]))];
	content = malloc(size);
	memcpy(content, data + 1, size - 1);
	content[size - 1] = '\0';
	if (classify_path_in(&roots, path, &t, &why) != CLASSIFY_NONE) {
		struct classify_input in = { path, content, size - 1, content,
					     size - 1, false, NULL };

		classify_content(&t, &in, &r1);
		in.existed = true;
		in.old_facts = r1.facts;
		in.len /= 2;
		classify_content(&t, &in, &r2);
		/* then the file deleted (removal events from the facts) */
		if (r2.facts != NULL) {
			struct classify_result r3 = { 0 };

			in.content = NULL;
			in.len = 0;
			in.aux = NULL;
			in.aux_len = 0;
			in.old_facts = r2.facts;
			classify_content(&t, &in, &r3);
			classify_result_clear(&r3);
		}
		free(classify_aux_path(&t, path));
		(void)classify_kind_name(t.kind);
		(void)classify_kind_is_dir(t.kind);
	}
	/* the path parser on the raw bytes too */
	classify_path_in(&roots, content, &t, &why);
	classify_result_clear(&r1);
	classify_result_clear(&r2);
	free(content);
	return 0;
}
