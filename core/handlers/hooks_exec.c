/* The exec hooks' handler: each delivery runs the executable with the
 * event as JSON on stdin and OPHOOK_* in its environment; its exit status
 * is the result (exechook.c runs the process). */
#define _GNU_SOURCE
#include "hooks_exec.h"
#include "dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "exechook.h"
#include "handler.h"
#include "hooks_int.h"
#include "log.h"
#include "util.h"

/* One process made (or queued on the pool) for a delivery. */
struct exec_run {
	struct execfile *x;
	struct delivery *d;
	struct exechook_proc *p;
	unsigned timeout_ms;
	struct exec_run *prev, *next; /* hk->exec_runs */
};

void hooks_exec_unref(struct execfile *x)
{
	if (x == NULL || --x->refs > 0)
		return;
	free(x->path);
	free(x->rel);
	free(x->pattern);
	free(x->last_error);
	hooks_unref(x->hk);
	free(x);
}

static void hooks_exec_run_cb(struct exechook_result *res, void *ctx)
{
	struct exec_run *r = ctx;
	struct execfile *x = r->x;
	char *error = NULL;
	int rc;

	rc = exechook_result_rc(res, r->timeout_ms, &error);
	if (!x->hk->stopped) {
		if (rc == 0 && (res->out_len > 0 || res->err_len > 0))
			log_msg(LOG_DEBUG_L, "hooks", "%s: exit 0; stdout: "
				"%.*s; stderr: %.*s", x->rel,
				(int)res->out_len, res->out,
				(int)res->err_len, res->err);
		if (error != NULL) {
			char *full = xasprintf("%s: %s", x->rel, error);

			free(error);
			error = full;
		}
		r->d->hdata = NULL;
		dispatch_done(r->d, rc, error);
	}
	free(error);
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		x->hk->exec_runs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	hooks_exec_unref(x);
	free(r);
}

static void hooks_exec_deliver(struct handler *h, struct delivery *d)
{
	struct execfile *x = h->data;
	struct hooks *hk = x->hk;
	struct exec_run *r;
	struct exechook_opts o;
	char id[64], type[128], subject[300], attempt[48];
	const char *argv[2] = { x->path, NULL };
	const char *env[] = { HOOKS_EXEC_PATH, id, type, subject, attempt,
			      "LANG=C.UTF-8", NULL };
	const char *err = NULL;
	char *why = NULL;
	int ret;

	/* check again right before running (TOCTOU) */
	ret = exechook_check_file(x->path, hooks_owner(), &why);
	if (ret < 0) {
		dispatch_done(d, ret == -ENOEXEC ? -EPERM : ret, why);
		free(why);
		return;
	}
	snprintf(id, sizeof(id), "OPHOOK_ID=%lld", (long long)d->ev->pub.id);
	snprintf(type, sizeof(type), "OPHOOK_EVENT=%s", d->ev->type);
	snprintf(subject, sizeof(subject), "OPHOOK_SUBJECT=%s", d->ev->subject);
	snprintf(attempt, sizeof(attempt), "OPHOOK_ATTEMPT=%u",
		 d->attempts + 1);
	memset(&o, 0, sizeof(o));
	o.argv = argv;
	o.env = env;
	o.cwd = "/";
	o.stdin_data = d->ev->json;
	o.stdin_len = d->ev->json != NULL ? strlen(d->ev->json) : 0;
	o.timeout_ms = hk->cfg->hooks.timeout_ms;
	o.output_max = hk->cfg->hooks.output_max;
	r = xcalloc(1, sizeof(*r));
	r->x = x;
	r->d = d;
	r->timeout_ms = o.timeout_ms;
	delivery_started(d);
	ret = exechook_spawn(hk->loop, &o, hooks_exec_run_cb, r, &r->p, &err);
	if (ret < 0) {
		char *msg = xasprintf("%s: cannot run: %s", x->rel, err);

		free(r);
		dispatch_done(d, ret, msg);
		free(msg);
		return;
	}
	x->refs++;
	d->hdata = r;
	r->next = hk->exec_runs;
	if (hk->exec_runs != NULL)
		hk->exec_runs->prev = r;
	hk->exec_runs = r;
}

static void hooks_exec_cancel(struct handler *h, struct delivery *d)
{
	struct exec_run *r = d->hdata;

	(void)h;
	if (r != NULL && r->p != NULL)
		exechook_kill(r->p);
}

static void hooks_exec_handler_free(struct handler *h)
{
	hooks_exec_unref(h->data);
	h->data = NULL;
}

static const struct handler_ops hooks_exec_ops = {
	.deliver = hooks_exec_deliver,
	.cancel = hooks_exec_cancel,
	.free = hooks_exec_handler_free,
};

void hooks_exec_register(struct execfile *x, unsigned order)
{
	struct handler *h;
	const char *err = NULL;
	char *name = xasprintf("exec:%s", x->rel);

	h = handler_new(&hooks_exec_ops, name);
	h->out_of_process = true; /* a process per call */
	free(name);
	handler_add_pattern(h, x->pattern);
	h->priority = (int)order; /* run-parts order, as a hint */
	h->timeout_ms = x->hk->cfg->hooks.timeout_ms +
			EXECHOOK_KILL_DELAY_MS + 3000;
	h->data = x;
	x->refs++;
	if (engine_handler_add(x->hk->e, h, &err) < 0) {
		log_msg(LOG_ERROR_L, h->name, "cannot register: %s", err);
		handler_free_unowned(&h);
		return;
	}
	x->ok = true;
}

void hooks_exec_unregister(struct execfile *x)
{
	char *name;

	if (!x->ok)
		return;
	x->ok = false;
	name = xasprintf("exec:%s", x->rel);
	engine_handler_remove(x->hk->e, name);
	free(name);
}

void hooks_exec_kill_runs(struct hooks *hk)
{
	for (struct exec_run *r = hk->exec_runs; r != NULL; r = r->next)
		exechook_kill(r->p);
}
