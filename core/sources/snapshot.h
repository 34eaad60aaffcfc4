/* The snapshot: what the classifier last knew about every classified path
 * (existence, inode, size, mtime, content hash, parsed facts), kept in
 * memory and persisted in its own SQLite file (WAL).  Persisted writes are
 * queued and flushed in one transaction; the watcher queues a path's write
 * only after its events are durable in the journal, so a crash can only
 * cause duplicates, never a lost event.  Loop thread only (the writer
 * thread behind snapshot_flush_async() is internal). */
#ifndef OPHOOK_SNAPSHOT_H
#define OPHOOK_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snapshot;

struct snapshot_entry {
	uint64_t ino;
	uint64_t size;
	int64_t mtime_ns;
	uint64_t hash;     /* classify_hash of the content (+ aux file) */
	char *facts;       /* JSON object text, or NULL (owned) */
	bool is_dir;
	/* for the watcher */
	uint32_t seen;     /* reconcile generation that saw the path */
	uint32_t busy;     /* events in flight for the path */
};

/* Open (create) the snapshot database at path and load it into memory.
 * *fresh_r (may be NULL): true when no baseline was ever completed.
 * 0 or -errno with *error_r (static or valid until the next call). */
int snapshot_open(const char *path, struct snapshot **s_r, bool *fresh_r,
		  const char **error_r);
/* When the file was unreadable at open (corrupt): where it was kept aside
 * (path.corrupt-TIME, with its -wal and -shm) and, in *why_r (may be
 * NULL), what was wrong; NULL when it was read.  The snapshot then starts
 * empty: the caller says so in an error and rebuilds it. */
const char *snapshot_recovered(const struct snapshot *s, const char **why_r);
/* True when the file was made by this open (missing, or set aside). */
bool snapshot_created(const struct snapshot *s);
/* The journal's last event id recorded with the last batch written before
 * this open (0: none); a journal whose last id is below it was emptied or
 * replaced. */
int64_t snapshot_journal_mark(const struct snapshot *s);
/* Record last_id (the journal's last event id, every queued state being
 * journaled) with the next batch written. */
void snapshot_set_journal_mark(struct snapshot *s, int64_t last_id);
/* Flush queued writes and close; NULLs *s.  Safe on NULL. */
void snapshot_close(struct snapshot **s);

/* The in-memory entry for path, or NULL. */
struct snapshot_entry *snapshot_get(struct snapshot *s, const char *path);
/* Set the in-memory entry for path (copied; facts duplicated) and return
 * it.  Does not persist. */
struct snapshot_entry *snapshot_put(struct snapshot *s, const char *path,
				    const struct snapshot_entry *e);
/* Remove path from memory (no persist). */
void snapshot_del(struct snapshot *s, const char *path);

/* Queue the persisted state of path: e (copied) or NULL for "gone". */
void snapshot_persist(struct snapshot *s, const char *path,
		      const struct snapshot_entry *e);
/* Number of queued writes. */
size_t snapshot_pending(const struct snapshot *s);
/* Write the queued states in one transaction (after waiting for the
 * writer thread's batch, if any).  0 or -errno. */
int snapshot_flush(struct snapshot *s, const char **error_r);
/* Hand the queued states to the writer thread (one transaction there) and
 * return at once; when it still writes the last batch, nothing is handed
 * (snapshot_pending() stays > 0: call again later).  A batch that failed
 * there gives -EIO here (*error_r) and goes back into the queue, retried
 * by the next call. */
int snapshot_flush_async(struct snapshot *s, const char **error_r);

/* Record that a full baseline/reconcile completed (persisted at the next
 * flush). */
void snapshot_mark_baseline(struct snapshot *s);

size_t snapshot_count(const struct snapshot *s);
/* Call fn for every entry (fn must not change the snapshot); stops when fn
 * returns false. */
void snapshot_each(struct snapshot *s,
		   bool (*fn)(const char *path, struct snapshot_entry *e,
			      void *ctx),
		   void *ctx);

/* Free an entry's contents (not the entry). */
void snapshot_entry_clear(struct snapshot_entry *e);

#endif
