#include "mountwatch.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mountwatch {
	uv_poll_t poll;
	int fd;
	char **roots;
	size_t n_roots;
	char *last;  /* the relevant mount points last seen */
	mountwatch_cb *cb;
	void *ctx;
};

/* a mount point is relevant when it is a root, under one, or above one */
static bool mountwatch_touches(const char *mp, const char *root)
{
	size_t m = strlen(mp), r = strlen(root);

	if (m == 1 && mp[0] == '/')
		return false; /* "/" is above everything and never moves */
	if (m <= r)
		return strncmp(root, mp, m) == 0 &&
		       (root[m] == '/' || root[m] == '\0');
	return strncmp(mp, root, r) == 0 && mp[r] == '/';
}

/* decode proc(5)'s octal escapes (\040 for a space) in place */
static void mountwatch_unescape(char *s)
{
	char *o = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

char *mountwatch_relevant(const char *text, const char *const *roots,
			  size_t n_roots)
{
	size_t cap = 64, len = 0;
	char *out = xmalloc(cap);
	const char *line = text;

	out[0] = '\0';
	while (line != NULL && *line != '\0') {
		const char *nl = strchr(line, '\n');
		size_t ll = nl != NULL ? (size_t)(nl - line) : strlen(line);
		char *copy = xstrndup(line, ll), *save = NULL, *f = NULL;

		/* id parent major:minor root MOUNT_POINT ... */
		f = strtok_r(copy, " ", &save);
		for (int i = 1; f != NULL && i < 5; i++)
			f = strtok_r(NULL, " ", &save);
		if (f != NULL) {
			mountwatch_unescape(f);
			for (size_t i = 0; i < n_roots; i++) {
				if (!mountwatch_touches(f, roots[i]))
					continue;
				size_t fl = strlen(f);

				while (len + fl + 2 > cap) {
					cap *= 2;
					out = xrealloc(out, cap);
				}
				memcpy(out + len, f, fl);
				len += fl;
				out[len++] = '\n';
				out[len] = '\0';
				break;
			}
		}
		free(copy);
		line = nl != NULL ? nl + 1 : NULL;
	}
	return out;
}

/* the whole table, read from the start of the open file */
static char *mountwatch_read(int fd)
{
	size_t cap = 16384, len = 0;
	char *buf = xmalloc(cap);
	ssize_t n;

	if (lseek(fd, 0, SEEK_SET) < 0) {
		free(buf);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

static char *mountwatch_scan(struct mountwatch *mw)
{
	char *text = mountwatch_read(mw->fd), *rel;

	if (text == NULL)
		return NULL;
	rel = mountwatch_relevant(text, (const char *const *)mw->roots,
				  mw->n_roots);
	free(text);
	return rel;
}

static void mountwatch_poll_cb(uv_poll_t *p, int status, int events)
{
	struct mountwatch *mw = p->data;
	char *now;

	(void)status;
	(void)events;
	now = mountwatch_scan(mw);
	if (now == NULL)
		return;
	if (mw->last != NULL && strcmp(now, mw->last) == 0) {
		free(now);
		return; /* a mount elsewhere (a container's, say) */
	}
	free(mw->last);
	mw->last = now;
	mw->cb(mw->ctx);
}

static void mountwatch_free(struct mountwatch *mw)
{
	for (size_t i = 0; i < mw->n_roots; i++)
		free(mw->roots[i]);
	free(mw->roots);
	free(mw->last);
	if (mw->fd >= 0)
		close(mw->fd);
	free(mw);
}

static void mountwatch_closed(uv_handle_t *h)
{
	mountwatch_free(h->data);
}

int mountwatch_start(uv_loop_t *loop, const char *mountinfo,
		     const char *const *roots, size_t n_roots,
		     mountwatch_cb *cb, void *ctx, struct mountwatch **mw_r,
		     const char **error_r)
{
	struct mountwatch *mw = xcalloc(1, sizeof(*mw));
	int ret;

	*mw_r = NULL;
	mw->cb = cb;
	mw->ctx = ctx;
	mw->roots = xcalloc(n_roots > 0 ? n_roots : 1, sizeof(char *));
	for (size_t i = 0; i < n_roots; i++)
		mw->roots[mw->n_roots++] = xstrdup(roots[i]);
	mw->fd = open(mountinfo != NULL ? mountinfo : "/proc/self/mountinfo",
		      O_RDONLY | O_CLOEXEC);
	if (mw->fd < 0) {
		ret = -errno;
		*error_r = "cannot open the mount table";
		mountwatch_free(mw);
		return ret;
	}
	mw->last = mountwatch_scan(mw);
	ret = uv_poll_init(loop, &mw->poll, mw->fd);
	if (ret < 0) {
		*error_r = "the mount table cannot be polled";
		mountwatch_free(mw);
		return ret;
	}
	mw->poll.data = mw;
	ret = uv_poll_start(&mw->poll, UV_PRIORITIZED, mountwatch_poll_cb);
	if (ret < 0) {
		*error_r = "the mount table cannot be polled";
		uv_close((uv_handle_t *)&mw->poll, mountwatch_closed);
		return ret;
	}
	*mw_r = mw;
	return 0;
}

void mountwatch_stop(struct mountwatch **mwp)
{
	struct mountwatch *mw = *mwp;

	if (mw == NULL)
		return;
	*mwp = NULL;
	uv_poll_stop(&mw->poll);
	uv_close((uv_handle_t *)&mw->poll, mountwatch_closed);
}
