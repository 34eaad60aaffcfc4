/* Unit tests: the mailserver plugin's line edits (plugins/mailserver/
 * mailfile.c), DKIM keys (dkim.c) and the plugin against the fake host on
 * real files in docker-mailserver's formats. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pluginmock.h"

#include "../../plugins/mailserver/mailserver.c"
#include "../../plugins/mailserver/mailfile.c"
#include "../../plugins/mailserver/dkim.c"

static char *slurp(const char *path)
{
	char *data = NULL;
	size_t len;

	if (ophook_file_read_nofollow(path, 1 << 24, &data, &len) < 0)
		return NULL;
	return data;
}

static void spew(const char *path, const char *text, mode_t mode)
{
	assert_int_equal(
		ophook_file_write_atomic(path, text, strlen(text), mode), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static char *join(const char *a, const char *b)
{
	char *s;

	assert_true(asprintf(&s, "%s/%s", a, b) > 0);
	return s;
}

/* ---- fixtures (docker-mailserver formats) ---- */

static const char accounts[] =
	"# accounts\n"
	"admin@keep.example|{SHA512-CRYPT}$6$abc$xyz\n"
	"bob@gone.example|{SHA512-CRYPT}$6$def$uvw\n"
	"\n"
	"this line is broken\n"
	"Carol@GONE.example|{SHA512-CRYPT}$6$ghi$rst|5000|5000\n"
	"dave@notgone.example|{SHA512-CRYPT}$6$jkl$opq\r\n"
	"eve@gone.example.org|{SHA512-CRYPT}$6$mno$lmn";

static const char accounts_want[] =
	"# accounts\n"
	"admin@keep.example|{SHA512-CRYPT}$6$abc$xyz\n"
	"\n"
	"this line is broken\n"
	"dave@notgone.example|{SHA512-CRYPT}$6$jkl$opq\r\n"
	"eve@gone.example.org|{SHA512-CRYPT}$6$mno$lmn";

static const char virtual_cf[] =
	"# aliases\n"
	"info@gone.example bob@gone.example\n"
	"sales@keep.example admin@keep.example, bob@gone.example\n"
	"@gone.example catchall@keep.example\n"
	"list@gone.example a@keep.example,\n"
	"\tb@keep.example\n"
	"postmaster root\n"
	"lonely@keep.example\n"
	"@keep.example admin@keep.example\n";

static const char virtual_want[] =
	"# aliases\n"
	"sales@keep.example admin@keep.example, bob@gone.example\n"
	"postmaster root\n"
	"lonely@keep.example\n"
	"@keep.example admin@keep.example\n";

static const char quotas[] =
	"admin@keep.example:5G\n"
	"bob@gone.example:1G\n"
	"garbage\n";

static const char quotas_want[] =
	"admin@keep.example:5G\n"
	"garbage\n";

struct warns {
	unsigned n;
	unsigned lines[8];
};

static void warn_cb(void *arg, unsigned line, const char *why)
{
	struct warns *w = arg;

	assert_non_null(why);
	if (w->n < 8)
		w->lines[w->n] = line;
	w->n++;
}

static void test_remove_domain_pure(void **state)
{
	char *out = NULL;
	size_t len = 0;
	unsigned removed = 0;
	struct warns w = { 0 };

	(void)state;
	assert_int_equal(mailfile_remove_domain(MAILFILE_ACCOUNTS, accounts,
						strlen(accounts), "gone.example",
						warn_cb, &w, &out, &len,
						&removed),
			 0);
	assert_string_equal(out, accounts_want);
	assert_int_equal(len, strlen(accounts_want));
	assert_int_equal(removed, 2);
	assert_int_equal(w.n, 1);
	assert_int_equal(w.lines[0], 5);
	free(out);

	memset(&w, 0, sizeof(w));
	assert_int_equal(mailfile_remove_domain(MAILFILE_VIRTUAL, virtual_cf,
						strlen(virtual_cf),
						"gone.example", warn_cb, &w,
						&out, &len, &removed),
			 0);
	assert_string_equal(out, virtual_want);
	assert_int_equal(removed, 4); /* 3 entries + 1 continuation */
	assert_int_equal(w.n, 1);     /* lonely@keep.example: no target */
	assert_int_equal(w.lines[0], 8);
	free(out);

	memset(&w, 0, sizeof(w));
	assert_int_equal(mailfile_remove_domain(MAILFILE_QUOTAS, quotas,
						strlen(quotas), "gone.example",
						warn_cb, &w, &out, &len,
						&removed),
			 0);
	assert_string_equal(out, quotas_want);
	assert_int_equal(w.n, 1);
	free(out);

	/* a domain with no lines: the text comes back unchanged */
	assert_int_equal(mailfile_remove_domain(MAILFILE_ACCOUNTS, accounts,
						strlen(accounts), "none.example",
						NULL, NULL, &out, &len,
						&removed),
			 0);
	assert_int_equal(removed, 0);
	assert_memory_equal(out, accounts, strlen(accounts));
	free(out);
}

static void test_dkim_tables_pure(void **state)
{
	static const char kt[] =
		"mail._domainkey.keep.example keep.example:mail:/k/keep.example/mail.private\n"
		"mail._domainkey.gone.example gone.example:mail:/k/gone.example/mail.private\n";
	static const char st[] = "*@keep.example mail._domainkey.keep.example\n"
				 "*@gone.example mail._domainkey.gone.example\n";
	char *out = NULL;
	size_t len;
	unsigned removed;

	(void)state;
	assert_int_equal(mailfile_remove_domain(MAILFILE_KEYTABLE, kt,
						strlen(kt), "gone.example",
						NULL, NULL, &out, &len,
						&removed),
			 0);
	assert_int_equal(removed, 1);
	assert_null(strstr(out, "gone"));
	assert_true(mailfile_has_key(out, len, "mail._domainkey.keep.example"));
	free(out);
	assert_int_equal(mailfile_remove_domain(MAILFILE_SIGNINGTABLE, st,
						strlen(st), "gone.example",
						NULL, NULL, &out, &len,
						&removed),
			 0);
	assert_string_equal(out, "*@keep.example mail._domainkey.keep.example\n");
	assert_false(mailfile_has_key(out, len, "*@gone.example"));
	free(out);
}

/* suspend + unsuspend of the pure functions gives the text back. */
static void roundtrip(const char *orig)
{
	const char *doms[] = { "a.example", "b.example" };
	const char *doms2[] = { "c.example" };
	char *s1, *s2, *u1, *u2;
	size_t l1, l2, lu1, lu2;
	unsigned removed;

	assert_int_equal(mailfile_access_add(orig, strlen(orig), "bob", doms, 2,
					     "R", &s1, &l1),
			 0);
	assert_non_null(strstr(s1, "# ophook:suspended:bob"));
	assert_non_null(strstr(s1, "\na.example REJECT R\n"));
	/* a second user, then bob leaves first */
	assert_int_equal(mailfile_access_add(s1, l1, "carol", doms2, 1, "R",
					     &s2, &l2),
			 0);
	assert_int_equal(mailfile_access_strip(s2, l2, "bob", &u1, &lu1,
					       &removed),
			 0);
	assert_int_equal(removed, 4);
	assert_null(strstr(u1, "suspended:bob\n"));
	assert_null(strstr(u1, "suspended:bob +nl"));
	assert_int_equal(mailfile_access_strip(u1, lu1, "carol", &u2, &lu2,
					       &removed),
			 0);
	assert_int_equal(removed, 2);
	assert_int_equal(lu2, strlen(orig));
	assert_memory_equal(u2, orig, lu2);
	free(u2);
	free(u1);
	/* bob alone */
	assert_int_equal(mailfile_access_strip(s1, l1, "bob", &u1, &lu1,
					       &removed),
			 0);
	assert_int_equal(lu1, strlen(orig));
	assert_memory_equal(u1, orig, lu1);
	free(u1);
	free(s2);
	free(s1);
}

static void test_access_roundtrip_pure(void **state)
{
	(void)state;
	roundtrip("");
	roundtrip("# send access\nspam@x.example REJECT\n");
	roundtrip("spam@x.example REJECT\n\n# no newline at the end");
	roundtrip("# ophook:suspended:bobby\nz.example REJECT R\n");
}

/* ---- the plugin on real files ---- */

struct fx {
	struct pluginmock *m;
	char *dir;
};

static void fx_setup(struct fx *f, const char *extra)
{
	char settings[1024];

	f->m = pluginmock_new(NULL);
	f->dir = join(pluginmock_tmp(f->m), "mail");
	assert_int_equal(ophook_mkdir_p(f->dir, 0755), 0);
	snprintf(settings, sizeof(settings), "{\"config_dir\": \"%s\"%s}",
		 f->dir, extra != NULL ? extra : "");
	pluginmock_set_settings(f->m, settings);
	pluginmock_set_plugin(f->m, &ophook_plugin);
}

static void fx_init(struct fx *f)
{
	const char *err = NULL;

	assert_int_equal(pluginmock_init(f->m, &err), 0);
}

static void fx_free(struct fx *f)
{
	pluginmock_free(&f->m);
	free(f->dir);
}

static void fx_file(struct fx *f, const char *name, const char *text,
		    mode_t mode)
{
	char *p = join(f->dir, name);

	spew(p, text, mode);
	free(p);
}

static void fx_expect(struct fx *f, const char *name, const char *want)
{
	char *p = join(f->dir, name), *got = slurp(p);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	free(p);
}

static unsigned count_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void test_domain_removed(void **state)
{
	struct fx f;
	const char *err = NULL;
	char *p, *bak;
	struct stat st;

	(void)state;
	fx_setup(&f, NULL);
	fx_file(&f, "postfix-accounts.cf", accounts, 0640);
	fx_file(&f, "postfix-virtual.cf", virtual_cf, 0644);
	fx_file(&f, "dovecot-quotas.cf", quotas, 0600);
	fx_init(&f);
	assert_int_equal(pluginmock_send(f.m, "domain.removed", "gone.example",
					 "{\"domain\":\"gone.example\"}", &err),
			 0);
	fx_expect(&f, "postfix-accounts.cf", accounts_want);
	fx_expect(&f, "postfix-virtual.cf", virtual_want);
	fx_expect(&f, "dovecot-quotas.cf", quotas_want);
	p = join(f.dir, "postfix-accounts.cf");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_true(pluginmock_own_written(f.m, p));
	free(p);
	/* bad lines reported with file:line */
	assert_int_equal(pluginmock_log_grep(f.m, "postfix-accounts.cf:5:"), 1);
	assert_int_equal(pluginmock_log_grep(f.m, "postfix-virtual.cf:8:"), 1);
	assert_int_equal(pluginmock_log_grep(f.m, "dovecot-quotas.cf:3:"), 1);
	/* one backup per changed file, with the old content and mode */
	bak = join(f.dir, "ophook-backups");
	assert_int_equal(count_dir(bak), 3);
	free(bak);
	/* again: nothing changes, no new backup */
	assert_int_equal(pluginmock_send(f.m, "domain.removed", "gone.example",
					 "{\"domain\":\"gone.example\"}", &err),
			 0);
	fx_expect(&f, "postfix-accounts.cf", accounts_want);
	bak = join(f.dir, "ophook-backups");
	assert_int_equal(count_dir(bak), 3);
	free(bak);
	fx_free(&f);
}

static void test_backup_content(void **state)
{
	struct fx f;
	const char *err = NULL;
	char *bdir, *name, *got;
	DIR *d;
	struct dirent *de;
	struct stat st;

	(void)state;
	fx_setup(&f, NULL);
	fx_file(&f, "dovecot-quotas.cf", quotas, 0640);
	fx_init(&f);
	assert_int_equal(pluginmock_send(f.m, "domain.removed", "gone.example",
					 NULL, &err),
			 0);
	bdir = join(f.dir, "ophook-backups");
	d = opendir(bdir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		assert_int_equal(strncmp(de->d_name, "dovecot-quotas.cf.", 18), 0);
		name = join(bdir, de->d_name);
		got = slurp(name);
		assert_string_equal(got, quotas);
		assert_int_equal(stat(name, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0640);
		free(got);
		free(name);
	}
	closedir(d);
	free(bdir);
	fx_free(&f);
}

/* Issue 16, finding 2: symlinks planted as the DKIM key folder, as a key
 * file or as the backup folder make root write nothing outside. */
static void test_hostile_symlinks(void **state)
{
	struct fx f;
	const char *err = NULL;
	char *outside, *victim, *p, *q, *got;
	struct stat st0, st1;

	(void)state;
	fx_setup(&f, NULL);
	fx_file(&f, "dovecot-quotas.cf", quotas, 0640);
	fx_init(&f);
	outside = join(pluginmock_tmp(f.m), "outside");
	assert_int_equal(mkdir(outside, 0755), 0);
	victim = join(outside, "mail.txt");
	spew(victim, "precious\n", 0644);
	assert_int_equal(stat(victim, &st0), 0);

	/* the key folder is a symlink */
	p = join(f.dir, "opendkim/keys");
	assert_int_equal(ophook_mkdir_p(p, 0755), 0);
	free(p);
	p = join(f.dir, "opendkim/keys/a.example");
	assert_int_equal(symlink(outside, p), 0);
	assert_int_equal(pluginmock_send(f.m, "domain.added", "a.example",
					 "{\"domain\":\"a.example\",\"user\":\"bob\"}",
					 &err),
			 -ELOOP);
	assert_non_null(strstr(err, "a.example: DKIM key folder "));
	assert_non_null(strstr(err, "opendkim/keys/a.example: a symlink, refused"));
	assert_int_equal(count_dir(outside), 1);
	free(p);

	/* the key's .txt is a symlink: replaced, the target untouched; the
	 * .private is a symlink: refused */
	p = join(f.dir, "opendkim/keys/b.example");
	assert_int_equal(mkdir(p, 0755), 0);
	q = join(p, "mail.txt");
	assert_int_equal(symlink(victim, q), 0);
	assert_int_equal(pluginmock_send(f.m, "domain.added", "b.example",
					 "{\"domain\":\"b.example\",\"user\":\"bob\"}",
					 &err),
			 0);
	assert_int_equal(lstat(q, &st1), 0);
	assert_true(S_ISREG(st1.st_mode));
	free(q);
	free(p);
	p = join(f.dir, "opendkim/keys/c.example");
	assert_int_equal(mkdir(p, 0755), 0);
	q = join(p, "mail.private");
	assert_int_equal(symlink(victim, q), 0);
	assert_int_equal(pluginmock_send(f.m, "domain.added", "c.example",
					 "{\"domain\":\"c.example\",\"user\":\"bob\"}",
					 &err),
			 -ELOOP);
	assert_non_null(strstr(err, "mail.private: a symlink, refused"));
	free(q);
	free(p);

	/* the backup folder is a symlink: refused, nothing changed */
	p = join(f.dir, "ophook-backups");
	assert_int_equal(symlink(outside, p), 0);
	assert_int_not_equal(pluginmock_send(f.m, "domain.removed",
					     "gone.example", NULL, &err),
			     0);
	assert_non_null(strstr(err, "ophook-backups: a symlink, refused"));
	assert_int_equal(count_dir(outside), 1);
	fx_expect(&f, "dovecot-quotas.cf", quotas);
	free(p);

	assert_int_equal(stat(victim, &st1), 0);
	assert_int_equal(st1.st_mtim.tv_sec, st0.st_mtim.tv_sec);
	assert_int_equal(st1.st_mtim.tv_nsec, st0.st_mtim.tv_nsec);
	got = slurp(victim);
	assert_string_equal(got, "precious\n");
	free(got);
	free(victim);
	free(outside);
	fx_free(&f);
}

static void test_suspend_roundtrip(void **state)
{
	static const char send0[] = "# sender access\nspam@x.example REJECT\n";
	static const char recv0[] = "abuse@y.example REJECT no"; /* no \n */
	struct fx f;
	const char *err = NULL;
	char *p, *got;

	(void)state;
	fx_setup(&f, NULL);
	fx_file(&f, "postfix-send-access.cf", send0, 0640);
	fx_file(&f, "postfix-receive-access.cf", recv0, 0644);
	fx_file(&f, "postfix-accounts.cf", accounts, 0640);
	fx_init(&f);
	/* the map learns bob's domains from domain.added (mail off: no DKIM) */
	pluginmock_fini(f.m);
	pluginmock_free(&f.m);
	free(f.dir);
	fx_setup(&f, ", \"mail_enabled\": false");
	fx_file(&f, "postfix-send-access.cf", send0, 0640);
	fx_file(&f, "postfix-receive-access.cf", recv0, 0644);
	fx_file(&f, "postfix-accounts.cf", accounts, 0640);
	fx_init(&f);
	assert_int_equal(pluginmock_send(f.m, "domain.added", "a.example",
					 "{\"domain\":\"a.example\",\"user\":\"bob\"}",
					 &err),
			 0);
	assert_int_equal(pluginmock_send(f.m, "domain.added", "b.example",
					 "{\"domain\":\"b.example\",\"user\":\"bob\"}",
					 &err),
			 0);
	assert_int_equal(pluginmock_send(f.m, "domain.added", "c.example",
					 "{\"domain\":\"c.example\",\"user\":\"carol\"}",
					 &err),
			 0);
	assert_int_equal(pluginmock_emitted_count(f.m, NULL), 0);
	assert_int_equal(pluginmock_send(f.m, "user.suspended", "user:bob",
					 "{\"user\":\"bob\"}", &err),
			 0);
	p = join(f.dir, "postfix-send-access.cf");
	got = slurp(p);
	assert_non_null(strstr(got, "\na.example REJECT "));
	assert_non_null(strstr(got, "\nb.example REJECT "));
	assert_null(strstr(got, "c.example"));
	free(got);
	free(p);
	p = join(f.dir, "postfix-receive-access.cf");
	got = slurp(p);
	assert_non_null(strstr(got, "\na.example REJECT "));
	free(got);
	free(p);
	/* twice: the same files */
	assert_int_equal(pluginmock_send(f.m, "user.suspended", "user:bob",
					 "{\"user\":\"bob\"}", &err),
			 0);
	/* passwords untouched */
	fx_expect(&f, "postfix-accounts.cf", accounts);
	/* an explicit domains list wins over the map */
	assert_int_equal(pluginmock_send(f.m, "user.suspended", "user:carol",
					 "{\"user\":\"carol\",\"domains\":[\"d.example\"]}",
					 &err),
			 0);
	assert_int_equal(pluginmock_send(f.m, "user.unsuspended", "user:bob",
					 "{\"user\":\"bob\"}", &err),
			 0);
	assert_int_equal(pluginmock_send(f.m, "user.unsuspended", "user:carol",
					 "{\"user\":\"SUSPENDED_20261128120000_carol\"}",
					 &err),
			 0);
	fx_expect(&f, "postfix-send-access.cf", send0);
	fx_expect(&f, "postfix-receive-access.cf", recv0);
	p = join(f.dir, "postfix-receive-access.cf");
	{
		struct stat st;

		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0644);
	}
	free(p);
	fx_free(&f);
}

static void test_hostile_names(void **state)
{
	struct fx f;
	const char *err = NULL;

	(void)state;
	fx_setup(&f, NULL);
	fx_init(&f);
	assert_int_equal(pluginmock_send(f.m, "domain.removed", "../../etc",
					 "{\"domain\":\"../../etc\"}", &err),
			 -EINVAL);
	assert_non_null(strstr(err, "field domain"));
	assert_int_equal(pluginmock_send(f.m, "domain.added", "a.example",
					 "{\"domain\":\"a.example\",\"user\":\"../x\"}",
					 &err),
			 -EINVAL);
	assert_non_null(strstr(err, "field user"));
	assert_int_equal(pluginmock_send(f.m, "user.suspended", "user:x",
					 "{\"user\":\"a/b\"}", &err),
			 -EINVAL);
	assert_non_null(strstr(err, "field user"));
	assert_int_equal(pluginmock_send(f.m, "user.suspended", "user:x",
					 "{\"user\":\"x\",\"domains\":[\"a.example\",\"../y\"]}",
					 &err),
			 -EINVAL);
	assert_non_null(strstr(err, "field domains[1]"));
	assert_int_equal(count_dir(f.dir), 0); /* nothing written */
	/* a symlinked config file is not followed */
	{
		char *target = join(pluginmock_tmp(f.m), "elsewhere.cf");
		char *link = join(f.dir, "dovecot-quotas.cf");
		char *got;

		spew(target, quotas, 0644);
		assert_int_equal(symlink(target, link), 0);
		assert_int_not_equal(pluginmock_send(f.m, "domain.removed",
						     "gone.example", NULL, &err),
				     0);
		assert_non_null(strstr(err, "dovecot-quotas.cf"));
		got = slurp(target);
		assert_string_equal(got, quotas);
		free(got);
		free(link);
		free(target);
	}
	fx_free(&f);
}

/* p= of a TXT value as DER, compared with the private key's public part. */
static void check_txt_matches_key(const char *txt, const char *pem_path)
{
	const char *p = strstr(txt, "p=");
	unsigned char der[4096];
	const unsigned char *dp = der;
	int n, pad = 0;
	size_t blen;
	EVP_PKEY *pub, *priv;
	FILE *fp;

	assert_non_null(p);
	p += 2;
	blen = strlen(p);
	assert_true(blen < sizeof(der));
	n = EVP_DecodeBlock(der, (const unsigned char *)p, (int)blen);
	assert_true(n > 0);
	while (blen > 0 && p[blen - 1] == '=') {
		blen--;
		pad++;
	}
	pub = d2i_PUBKEY(NULL, &dp, n - pad);
	assert_non_null(pub);
	fp = fopen(pem_path, "r");
	assert_non_null(fp);
	priv = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(priv);
	assert_int_equal(EVP_PKEY_eq(pub, priv), 1);
	assert_int_equal(EVP_PKEY_get_bits(priv), 2048);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(priv);
}

static void test_dkim_added(void **state)
{
	struct fx f;
	const char *err = NULL;
	const struct pluginmock_emitted *e;
	char *priv, *txt, *kt, *st, *got, *pem1, *pem2;
	json_t *fields;
	struct stat sb;

	(void)state;
	fx_setup(&f, NULL);
	fx_init(&f);
	assert_int_equal(pluginmock_send(f.m, "domain.added", "new.example",
					 "{\"domain\":\"new.example\",\"user\":\"bob\"}",
					 &err),
			 0);
	priv = join(f.dir, "opendkim/keys/new.example/mail.private");
	txt = join(f.dir, "opendkim/keys/new.example/mail.txt");
	kt = join(f.dir, "opendkim/KeyTable");
	st = join(f.dir, "opendkim/SigningTable");
	assert_int_equal(stat(priv, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(pluginmock_emitted_count(f.m, "mail.dkim.created"), 1);
	e = pluginmock_emitted(f.m, 0);
	assert_string_equal(e->subject, "new.example");
	fields = json_loads(e->fields, 0, NULL);
	assert_non_null(fields);
	assert_string_equal(json_string_value(json_object_get(fields, "domain")),
			    "new.example");
	assert_string_equal(json_string_value(json_object_get(fields, "selector")),
			    "mail");
	assert_int_equal(strncmp(json_string_value(json_object_get(fields, "txt")),
				 "v=DKIM1; h=sha256; k=rsa; p=", 28),
			 0);
	check_txt_matches_key(json_string_value(json_object_get(fields, "txt")),
			      priv);
	json_decref(fields);
	got = slurp(txt);
	assert_int_equal(strncmp(got, "mail._domainkey\tIN\tTXT\t( \"v=DKIM1; "
				      "h=sha256; k=rsa; \"\n\t  \"p=",
				 45),
			 0);
	free(got);
	got = slurp(kt);
	assert_string_equal(got, "mail._domainkey.new.example new.example:mail:"
				 "/tmp/docker-mailserver/opendkim/keys/"
				 "new.example/mail.private\n");
	free(got);
	got = slurp(st);
	assert_string_equal(got, "*@new.example mail._domainkey.new.example\n");
	free(got);
	/* again: the key is kept, the tables get no second line */
	pem1 = slurp(priv);
	assert_int_equal(pluginmock_send(f.m, "domain.added", "new.example",
					 "{\"domain\":\"new.example\"}", &err),
			 0);
	pem2 = slurp(priv);
	assert_string_equal(pem1, pem2);
	got = slurp(kt);
	assert_int_equal(strlen(got),
			 strlen("mail._domainkey.new.example new.example:mail:"
				"/tmp/docker-mailserver/opendkim/keys/"
				"new.example/mail.private\n"));
	free(got);
	assert_int_equal(pluginmock_emitted_count(f.m, "mail.dkim.created"), 2);
	/* removal takes the table lines out */
	assert_int_equal(pluginmock_send(f.m, "domain.removed", "new.example",
					 NULL, &err),
			 0);
	got = slurp(kt);
	assert_string_equal(got, "");
	free(got);
	free(pem1);
	free(pem2);
	free(priv);
	free(txt);
	free(kt);
	free(st);
	fx_free(&f);
}

/* Backups beyond backups_keep go (oldest first); reload_argv runs once
 * from the coalesced action after changes. */
static void test_backups_keep_and_reload(void **state)
{
	struct fx f;
	const char *err = NULL;
	char settings[1024], *bdir, *out, *script, *got;

	(void)state;
	fx_setup(&f, NULL);
	script = join(pluginmock_tmp(f.m), "reload.sh");
	spew(script, "#!/bin/sh\necho \"$@\" >> \"$0.out\"\n", 0755);
	snprintf(settings, sizeof(settings),
		 "{\"config_dir\": \"%s\", \"backups_keep\": \"2\", "
		 "\"reload_argv\": [\"%s\", \"go\"]}",
		 f.dir, script);
	pluginmock_set_settings(f.m, settings);
	fx_init(&f);
	for (int i = 0; i < 4; i++) {
		char name[64];

		snprintf(name, sizeof(name), "d%d.example", i);
		fx_file(&f, "dovecot-quotas.cf",
			i % 2 ? "x@d1.example:1G\nx@d3.example:1G\n"
			      : "x@d0.example:1G\nx@d2.example:1G\n",
			0600);
		assert_int_equal(pluginmock_send(f.m, "domain.removed", name,
						 NULL, &err),
				 0);
	}
	bdir = join(f.dir, "ophook-backups");
	assert_int_equal(count_dir(bdir), 2);
	assert_true(pluginmock_action_pending(f.m, "reload"));
	assert_int_equal(pluginmock_run_actions(f.m), 1);
	out = join(pluginmock_tmp(f.m), "reload.sh.out");
	got = slurp(out);
	assert_non_null(got);
	assert_string_equal(got, "go\n");
	free(got);
	free(out);
	free(bdir);
	free(script);
	fx_free(&f);
}

static void test_settings_bad(void **state)
{
	struct pluginmock *m = pluginmock_new("{\"dkim_bits\": \"12\"}");
	const char *err = NULL;

	(void)state;
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_non_null(strstr(err, "dkim_bits"));
	pluginmock_free(&m);
	m = pluginmock_new("{\"dkim_selector\": \"a b\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_non_null(strstr(err, "dkim_selector"));
	pluginmock_free(&m);
}

/* Settings are checked by the host against ms_settings_decl[]: the error
 * names the setting and the bounds; a check-only init does nothing (no
 * state file, no DKIM key, no folder). */
static void test_settings_declared(void **state)
{
	struct pluginmock *m = pluginmock_new("{\"dkim_bits\": 16384}");
	const char *err = NULL;
	char *settings = NULL;

	(void)state;
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_string_equal(err, "plugins.mailserver.settings.dkim_bits: "
				 "'16384' is out of range 1024..8192");
	pluginmock_free(&m);
	m = pluginmock_new("{\"backups_keep\": 0}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_string_equal(err, "plugins.mailserver.settings.backups_keep: "
				 "'0' is out of range 1..100000");
	pluginmock_free(&m);
	m = pluginmock_new("{\"mail_enabled\": \"sometimes\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_string_equal(err, "plugins.mailserver.settings.mail_enabled: "
				 "'sometimes' is not a boolean (true or false)");
	pluginmock_free(&m);
	m = pluginmock_new("{\"config_dir\": \"dms/config\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_string_equal(err, "plugins.mailserver.settings.config_dir: "
				 "'dms/config' is not an absolute path");
	pluginmock_free(&m);

	m = pluginmock_new(NULL);
	assert_true(asprintf(&settings,
			     "{\"config_dir\": \"%s/config\", \"reload_argv\": "
			     "\"true\", \"dkim_bits\": 1024}",
			     pluginmock_tmp(m)) > 0);
	pluginmock_set_settings(m, settings);
	free(settings);
	pluginmock_set_plugin(m, &ophook_plugin);
	pluginmock_check_only(m, true);
	assert_int_equal(pluginmock_init(m, &err), OPHOOK_SETTINGS_CHECKED);
	assert_null(pluginmock_data(m));
	assert_int_equal(pluginmock_tmp_entries(m), 0);
	assert_int_equal(pluginmock_log_count(m), 0);
	pluginmock_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remove_domain_pure),
		cmocka_unit_test(test_dkim_tables_pure),
		cmocka_unit_test(test_access_roundtrip_pure),
		cmocka_unit_test(test_domain_removed),
		cmocka_unit_test(test_backup_content),
		cmocka_unit_test(test_hostile_symlinks),
		cmocka_unit_test(test_suspend_roundtrip),
		cmocka_unit_test(test_hostile_names),
		cmocka_unit_test(test_dkim_added),
		cmocka_unit_test(test_backups_keep_and_reload),
		cmocka_unit_test(test_settings_bad),
		cmocka_unit_test(test_settings_declared),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
