/* Helper for bench/burst (the watcher's burst benchmark).
 *   burst_helper write DIR N PREFIX   write N files DIR/PREFIX<i>.example.org.conf
 *                                     as fast as possible; prints seconds
 *   burst_helper raw DIR N            the same burst read by a bare C inotify
 *                                     loop; prints "events seconds lost"
 *   burst_helper latency DIR N LOG    N spaced single changes; for each, the
 *                                     time from close() to its line in LOG;
 *                                     prints "p50_ms p99_ms missed" */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_one(const char *dir, const char *prefix, long i)
{
	char path[4096], buf[256];
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s%ld.example.org.conf", dir, prefix,
		 i);
	n = snprintf(buf, sizeof(buf),
		     "%s%ld.example.org {\n    reverse_proxy "
		     "http://127.0.0.1:8080\n}\n", prefix, i);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, (size_t)n) != n) {
		perror(path);
		return -1;
	}
	return close(fd);
}

static int burst_write(const char *dir, long n, const char *prefix)
{
	double t0 = now_s();

	for (long i = 0; i < n; i++)
		if (write_one(dir, prefix, i) < 0)
			return 1;
	printf("%.3f\n", now_s() - t0);
	return 0;
}

static int burst_raw(const char *dir, long n)
{
	int fd = inotify_init1(IN_CLOEXEC);
	static char buf[256 * 1024] __attribute__((aligned(8)));
	long seen = 0;
	double t0, last = 0;
	bool overflow = false;
	pid_t pid;

	if (fd < 0 || inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO |
					IN_CREATE | IN_DELETE) < 0) {
		perror("inotify");
		return 1;
	}
	t0 = now_s();
	pid = fork();
	if (pid == 0)
		_exit(burst_write(dir, n, "raw") != 0);
	while (seen < n) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (poll(&p, 1, 3000) <= 0)
			break; /* quiet for 3 s: the rest is lost */
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r <= 0)
			break;
		for (char *q = buf; q < buf + r;) {
			struct inotify_event *ev = (void *)q;

			if (ev->mask & IN_Q_OVERFLOW)
				overflow = true;
			if (ev->mask & IN_CLOSE_WRITE) {
				seen++;
				last = now_s();
			}
			q += sizeof(*ev) + ev->len;
		}
	}
	waitpid(pid, NULL, 0);
	printf("%ld %.3f %ld%s\n", seen, last - t0, n - seen,
	       overflow ? " overflow" : "");
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int burst_latency(const char *dir, long n, const char *log)
{
	double *lat = calloc((size_t)n, sizeof(*lat));
	char needle[128], *buf = malloc(1 << 20);
	int lfd = open(log, O_RDONLY | O_CLOEXEC);
	off_t off;
	long missed = 0, k = 0;

	if (lfd < 0 || lat == NULL || buf == NULL) {
		perror(log);
		return 1;
	}
	off = lseek(lfd, 0, SEEK_END);
	for (long i = 0; i < n; i++) {
		double t0, deadline;
		bool found = false;
		size_t have = 0;

		snprintf(needle, sizeof(needle), "\"lat%ld.example.org\"", i);
		if (write_one(dir, "lat", i) < 0)
			return 1;
		t0 = now_s();
		deadline = t0 + 5;
		while (!found && now_s() < deadline) {
			ssize_t r = pread(lfd, buf + have, (1 << 20) - 1 - have,
					  off);

			if (r > 0) {
				off += r;
				have += (size_t)r;
				buf[have] = '\0';
				if (strstr(buf, needle) != NULL) {
					found = true;
					break;
				}
				char *nl = memrchr(buf, '\n', have);
				if (nl != NULL) { /* keep a partial line */
					size_t rest = have - (size_t)(nl + 1 - buf);

					memmove(buf, nl + 1, rest);
					have = rest;
				}
			} else {
				struct timespec ts = { 0, 20000 };

				nanosleep(&ts, NULL);
			}
		}
		if (!found) {
			missed++;
			continue;
		}
		lat[k++] = (now_s() - t0) * 1000.0;
		struct timespec gap = { 0, 2000000 }; /* spaced: 2 ms */
		nanosleep(&gap, NULL);
	}
	qsort(lat, (size_t)k, sizeof(*lat), cmp_d);
	if (k == 0)
		printf("0 0 %ld\n", missed);
	else
		printf("%.3f %.3f %ld\n", lat[k / 2], lat[(k * 99) / 100 < k ?
							 (k * 99) / 100 : k - 1],
		       missed);
	free(lat);
	free(buf);
	close(lfd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "write") == 0)
		return burst_write(argv[2], atol(argv[3]), argv[4]);
	if (argc >= 4 && strcmp(argv[1], "raw") == 0)
		return burst_raw(argv[2], atol(argv[3]));
	if (argc >= 5 && strcmp(argv[1], "latency") == 0)
		return burst_latency(argv[2], atol(argv[3]), argv[4]);
	fprintf(stderr, "usage: burst_helper write DIR N PREFIX | raw DIR N | "
			"latency DIR N LOG\n");
	return 2;
}
