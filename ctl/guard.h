/* ophookctl guard: a veto in front of OpenPanel's opencli.
 *
 * opencli (2.x, /usr/local/bin/opencli) runs
 * /etc/openpanel/openpanel/hooks/pre_<cmd>.sh (or pre_<cmd>) as
 * `bash HOOK ARGS...` with stdin, stdout and stderr on /dev/null, waits for
 * it and ignores its exit status, then runs the command's script.  So a
 * deny cannot be an exit status: the guard's pre hook writes the reason to
 * the opencli process's own stderr (/proc/<ppid>/fd/2: the terminal, or the
 * pipe of whoever started opencli) and stops that opencli process (its
 * parent) with SIGTERM before the script starts.  Only that one process is
 * signalled, never a process group: opencli started by the Go panel or
 * from another opencli script shares its group with its caller.
 *
 * Inside OpenPanel's `openpanel` container (where the user panel runs
 * opencli) there is no ophookctl and no /run of the host: there the hooks
 * run ophook-guard (ctl/guardclient.c, static), copied by install next to
 * ophookd's relay socket (checks.relay_socket, under /etc/openpanel, which
 * the container mounts); the relay answers `check` only.
 *
 * Every opencli command is in one table (guard.c): mapped to an intent
 * that `check` asks ophookd's pre hooks about, or known to change nothing
 * (allowed without asking); a command in neither is logged and allowed. */
#ifndef OPHOOK_CTL_GUARD_H
#define OPHOOK_CTL_GUARD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Ask ophookd: send `check ARGS` (ARGS[0] the intent, then key=value) and
 * return 0 with *result_r = the answer's result ({"allow":..,"reason":..})
 * owned by the caller, or -errno when ophookd cannot answer. */
typedef int guard_ask_fn(void *ctx, json_t *args, json_t **result_r);

struct guard_env {
	const char *socket;     /* the control socket the hooks will ask */
	guard_ask_fn *ask;
	void *ask_ctx;
	/* the config's checks.fail_open (intent patterns allowed when
	 * ophookd cannot answer), written into the hooks by install */
	const char *const *fail_open;
	size_t n_fail_open;
	/* the config's checks.relay_socket (NULL: unknown or off): install
	 * gives the hooks a way to ask from inside the openpanel container */
	const char *relay_socket;
};

/* One row of the table. */
struct guard_cmd {
	const char *cmd;        /* opencli's first argument: "domains-add" */
	const char *sub[2];     /* required leading words ("email", "add"),
				   NULL when none */
	const char *intent;     /* NULL: changes nothing, never asked */
	const char *keys[5];    /* the positional arguments after sub, in
				   order: key name, "-" to skip (passwords
				   are never passed on), NULL ends */
};

/* The whole table (for the test that every intent is in the catalogue);
 * *n_r rows. */
const struct guard_cmd *guard_table_get(size_t *n_r);

/* Find the row for an opencli argv (argv[0] the command).  NULL when the
 * command is not in the table. */
const struct guard_cmd *guard_lookup(int argc, char *const *argv);

/* Build the check arguments for row g and argv: [intent, "key=value"...].
 * Options `--comment=X`, `--docroot=X` and a few others are passed on as
 * key=value; other options and skipped positions are not.  Returns a new
 * array. */
json_t *guard_check_args(const struct guard_cmd *g, int argc,
			 char *const *argv);

/* `ophookctl guard SUBCOMMAND ...` (argv[0] = "guard").  Returns the exit
 * status. */
int guard_main(const struct guard_env *env, int argc, char **argv);

#endif
