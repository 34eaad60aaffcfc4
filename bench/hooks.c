/* bench/hooks N: per-event cost of a no-op Lua hook and of an exec hook
 * (a /bin/true-like script), next to a plain fork-and-exec of /bin/true,
 * all measured in the same run (processes: min(N, OPHOOK_BENCH_PROC_MAX)
 * runs, default 200).
 *
 * Measured by calling the hook code directly (no daemon, no journal):
 *   lua:  luahook_run_event() on a loaded no-op hook (sandbox call: event
 *         proxy, pcall with deadline and traceback handler);
 *   exec: exechook_spawn() on a libuv loop (process group, pipes, stdin
 *         JSON, environment, output capture, exit status);
 *   fork: fork() + execve("/bin/true") + waitpid().
 * Last line: result: n=N lua_us_per_event=A exec_us_per_event=B
 * fork_us_per_event=C */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exechook.h"
#include "luahook.h"
#include "util.h"

static const char *payload_json =
	"{\"id\":123456,\"type\":\"domain.added\",\"time\":"
	"\"2026-11-28T15:00:00.000Z\",\"source\":\"inotify\",\"subject\":"
	"\"shop.example.com\",\"node\":\"web1\",\"domain\":\"shop.example.com\","
	"\"user\":\"bob\",\"path\":\"/etc/openpanel/caddy/domains/"
	"shop.example.com.conf\"}";

struct exec_state {
	unsigned left;
	unsigned failed;
	const char *argv[2];
	const char *env[5];
	uv_loop_t *loop;
};

static void exec_next(struct exec_state *s);

static void exec_done(struct exechook_result *res, void *ctx)
{
	struct exec_state *s = ctx;

	if (res->exit_status != 0 || res->timed_out)
		s->failed++;
	exec_next(s);
}

static void exec_next(struct exec_state *s)
{
	struct exechook_opts o = {
		.argv = s->argv, .env = s->env, .stdin_data = payload_json,
		.stdin_len = strlen(payload_json), .timeout_ms = 5000,
		.output_max = 4096,
	};
	const char *err = NULL;

	if (s->left == 0)
		return;
	s->left--;
	if (exechook_spawn(s->loop, &o, exec_done, s, NULL, &err) < 0) {
		fprintf(stderr, "spawn: %s\n", err);
		exit(1);
	}
}

static double bench_lua(unsigned n, const char *what, const char *code)
{
	struct luahook_limits lim = { .memory_max = 16u << 20,
				      .timeout_ms = 5000, .output_max = 4096 };
	json_t *payload = json_loads(payload_json, 0, NULL);
	struct luahook *lh = NULL;
	char *err = NULL;
	int64_t t0, t1;

	if (luahook_load_string(code, strlen(code), "bench.lua", &lim, NULL,
				&lh, &err) < 0) {
		fprintf(stderr, "load: %s\n", err);
		exit(1);
	}
	for (unsigned i = 0; i < 1000; i++) /* warm up */
		luahook_run_event(lh, "domain.added", payload, 1, NULL, NULL,
				  &err);
	t0 = mono_ns();
	for (unsigned i = 0; i < n; i++) {
		if (luahook_run_event(lh, "domain.added", payload, 1, NULL,
				      NULL, &err) != 0) {
			fprintf(stderr, "run: %s\n", err);
			exit(1);
		}
	}
	t1 = mono_ns();
	printf("%-34s %10u %12.2f  (memory %zu KiB)\n", what, n,
	       (double)(t1 - t0) / 1000.0 / n, luahook_memory(lh) / 1024);
	luahook_free(&lh);
	json_decref(payload);
	return (double)(t1 - t0) / 1000.0 / n;
}

static double bench_exec(unsigned n, const char *script)
{
	struct exec_state s = {
		.left = n,
		.argv = { script, NULL },
		.env = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
			 "OPHOOK_EVENT=domain.added", "OPHOOK_ID=123456",
			 "OPHOOK_SUBJECT=shop.example.com", NULL },
	};
	uv_loop_t loop;
	int64_t t0, t1;

	uv_loop_init(&loop);
	s.loop = &loop;
	t0 = mono_ns();
	exec_next(&s);
	uv_run(&loop, UV_RUN_DEFAULT);
	t1 = mono_ns();
	uv_loop_close(&loop);
	if (s.failed > 0) {
		fprintf(stderr, "exec: %u runs failed\n", s.failed);
		exit(1);
	}
	printf("%-34s %10u %12.2f\n", "exec hook (exechook_spawn, sh)", n,
	       (double)(t1 - t0) / 1000.0 / n);
	return (double)(t1 - t0) / 1000.0 / n;
}

static double bench_fork(unsigned n)
{
	char *const argv[] = { (char *)"/bin/true", NULL };
	char *const envp[] = { NULL };
	int64_t t0, t1;

	t0 = mono_ns();
	for (unsigned i = 0; i < n; i++) {
		pid_t pid = fork();
		int st;

		if (pid == 0) {
			execve("/bin/true", argv, envp);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || st != 0) {
			fprintf(stderr, "fork: failed\n");
			exit(1);
		}
	}
	t1 = mono_ns();
	printf("%-34s %10u %12.2f\n", "fork+exec /bin/true + waitpid", n,
	       (double)(t1 - t0) / 1000.0 / n);
	return (double)(t1 - t0) / 1000.0 / n;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 10000;
	const char *cap_env = getenv("OPHOOK_BENCH_PROC_MAX");
	unsigned cap = cap_env != NULL ? (unsigned)strtoul(cap_env, NULL, 10)
				       : 200;
	unsigned n_proc;
	char dir[] = "/tmp/bench_hooks.XXXXXX", script[64];
	double lua, exec, fork_us;
	FILE *f;

	if (n == 0)
		n = 1;
	if (cap == 0)
		cap = 1;
	n_proc = n > cap ? cap : n;
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(script, sizeof(script), "%s/10-true", dir);
	f = fopen(script, "w");
	if (f == NULL)
		return 1;
	fputs("#!/bin/sh\nexit 0\n", f);
	fclose(f);
	chmod(script, 0755);

	printf("bench/hooks: hook code called directly (no daemon, no "
	       "journal); payload %zu bytes\n", strlen(payload_json));
	printf("processes: %u runs each (N capped at OPHOOK_BENCH_PROC_MAX, "
	       "default 200)\n\n", n_proc);
	printf("%-34s %10s %12s\n", "what", "runs", "us/event");
	lua = bench_lua(n, "lua no-op hook (luahook_run_event)",
			"ophook.on('domain.added', function(ev) end)\n");
	bench_lua(n, "lua hook reading 3 fields",
		  "n = 0\nophook.on('domain.added', function(ev)\n"
		  "  if ev.domain and ev.user and ev.type then n = n + 1 end\n"
		  "end)\n");
	exec = bench_exec(n_proc, script);
	fork_us = bench_fork(n_proc);
	printf("\nlua target: < 10 us/event: %s\n",
	       lua < 10.0 ? "met" : "NOT met");
	printf("result: n=%u lua_us_per_event=%.2f exec_us_per_event=%.1f "
	       "fork_us_per_event=%.1f\n", n, lua, exec, fork_us);
	unlink(script);
	rmdir(dir);
	return 0;
}
