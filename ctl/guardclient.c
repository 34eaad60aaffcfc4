/* ophook-guard: `ophookctl guard check` alone, linked statically, for the
 * guard's pre hooks where ophookctl cannot run: inside OpenPanel's
 * `openpanel` container (Alpine: no glibc, no ophookctl, no /run of the
 * host).  `ophookctl guard install` copies it next to ophookd's relay
 * socket (checks.relay_socket, under /etc/openpanel, which the container
 * mounts), and the hooks run it there as
 *
 *   ophook-guard -s RELAY_SOCKET check [--fail-open] ... --hook "$0" -- ARGS
 *
 * The same code as ophookctl's (ctl/guard.c) decides and stops the
 * opencli run; only the question travels over the relay, which answers
 * `check` and nothing else. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "guard.h"

/* how long a question may take (the Lua pre hooks have their own, shorter
 * deadlines); past it ophookd "cannot answer" */
#define GUARDCLIENT_TIMEOUT_S 30
/* the longest answer line read */
#define GUARDCLIENT_ANSWER_MAX (1024 * 1024)

static int guardclient_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = GUARDCLIENT_TIMEOUT_S };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

static int guardclient_write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, s, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		s += w;
		len -= (size_t)w;
	}
	return 0;
}

/* One line of at most GUARDCLIENT_ANSWER_MAX bytes, read byte by byte
 * into a growing buffer (an answer is one short line). */
static int guardclient_read_line(int fd, char **line_r, size_t *len_r)
{
	size_t cap = 512, len = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		char c;
		ssize_t n = read(fd, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno == EAGAIN ? ETIMEDOUT : errno;

			free(buf);
			return -err;
		}
		if (n == 0 || c == '\n')
			break;
		if (len + 1 >= cap) {
			char *nb = cap < GUARDCLIENT_ANSWER_MAX
					   ? realloc(buf, cap * 2)
					   : NULL;

			if (nb == NULL) {
				free(buf);
				return -EMSGSIZE;
			}
			buf = nb;
			cap *= 2;
		}
		buf[len++] = c;
	}
	if (len == 0) {
		free(buf);
		return -ECONNRESET;
	}
	buf[len] = '\0';
	*line_r = buf;
	*len_r = len;
	return 0;
}

/* guard_ask_fn: one `check` request on a new connection to the relay. */
static int guardclient_ask(void *ctx, json_t *args, json_t **result_r)
{
	const char *path = ctx;
	json_t *req, *ans, *res;
	char *text, *line = NULL;
	size_t len;
	int fd, r;

	*result_r = NULL;
	if ((fd = guardclient_connect(path)) < 0)
		return fd;
	req = json_pack("{sssOsbsb}", "cmd", "check", "args", args, "json", 1,
			"tty", 0);
	text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (text == NULL) {
		close(fd);
		return -ENOMEM;
	}
	len = strlen(text);
	r = guardclient_write_all(fd, text, len);
	if (r == 0)
		r = guardclient_write_all(fd, "\n", 1);
	free(text);
	if (r == 0)
		r = guardclient_read_line(fd, &line, &len);
	close(fd);
	if (r < 0)
		return r;
	ans = json_loadb(line, len, 0, NULL);
	free(line);
	res = json_object_get(ans, "result");
	if (!json_is_true(json_object_get(ans, "ok")) || !json_is_object(res)) {
		json_decref(ans);
		return -EPROTO;
	}
	*result_r = json_incref(res);
	json_decref(ans);
	return 0;
}

static void guardclient_usage(FILE *f)
{
	fprintf(f, "usage: ophook-guard -s RELAY_SOCKET check [--fail-open|"
		   "--fail-closed] [--fail-open-intent PAT]... [--log FILE] "
		   "--hook .../pre_CMD.sh -- ARGS...\n"
		   "The guard's pre hook where ophookctl cannot run (inside "
		   "the openpanel container); see ophookctl(8) GUARD.\n");
}

int main(int argc, char **argv)
{
	const char *sock = NULL;
	char **av;
	int i = 1;

	if (argc >= 3 && strcmp(argv[1], "-s") == 0) {
		sock = argv[2];
		i = 3;
	}
	if (sock == NULL || sock[0] != '/' || i >= argc ||
	    strcmp(argv[i], "check") != 0) {
		guardclient_usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* guard_main's argv: "guard" then "check ..." */
	av = calloc((size_t)(argc - i) + 2, sizeof(char *));
	if (av == NULL)
		return 1;
	av[0] = "guard";
	for (int k = i; k < argc; k++)
		av[k - i + 1] = argv[k];

	struct guard_env env = { .socket = sock,
				 .ask = guardclient_ask,
				 .ask_ctx = (void *)sock };
	int status = guard_main(&env, argc - i + 1, av);

	free(av);
	return status;
}
