/* Mount table changes that touch the watched roots.  inotify says nothing
 * when a file system is mounted on top of a watched folder (the watch stays
 * on the covered folder), so the watcher also follows /proc/self/mountinfo,
 * which the kernel marks with POLLPRI on every change (proc(5)), and reacts
 * only when a mount point at, under or above one of its roots comes or
 * goes.  Loop thread only. */
#ifndef OPHOOK_MOUNTWATCH_H
#define OPHOOK_MOUNTWATCH_H

#include <stddef.h>
#include <uv.h>

struct mountwatch;

/* Called on the loop thread when the relevant mount points changed. */
typedef void mountwatch_cb(void *ctx);

/* Start following the mount table for roots (absolute paths, copied).
 * mountinfo: the file to follow, NULL for /proc/self/mountinfo.  Errors:
 * -errno with *error_r set (the caller may go on without it). */
int mountwatch_start(uv_loop_t *loop, const char *mountinfo,
		     const char *const *roots, size_t n_roots,
		     mountwatch_cb *cb, void *ctx, struct mountwatch **mw_r,
		     const char **error_r);

/* Stop; NULLs *mw.  The memory goes when the loop closes the handle. */
void mountwatch_stop(struct mountwatch **mw);

/* The mount points in mountinfo text (proc(5) format, octal escapes
 * decoded) that are at, under or above one of roots, one per line in
 * table order; "" when none.  Caller frees. */
char *mountwatch_relevant(const char *text, const char *const *roots,
			  size_t n_roots);

#endif
