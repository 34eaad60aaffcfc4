#include "ledger.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEDGER_NAME_MAX 119

struct ledger_slot {
	int64_t event_id;               /* 0: free */
	char handler[LEDGER_NAME_MAX + 1];
};

struct ledger {
	struct ledger_slot *slots;
	unsigned n;
	int *free_list;                 /* stack of free slot numbers */
	unsigned n_free;
	size_t map_len;
};

int ledger_open(const char *path, unsigned slots, struct ledger **l_r,
		const char **error_r)
{
	struct ledger *l;
	size_t len = (size_t)slots * sizeof(struct ledger_slot);
	struct stat st;
	void *map;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = "cannot open the in-flight ledger";
		return -errno;
	}
	if (fstat(fd, &st) < 0 || ((size_t)st.st_size < len &&
				   ftruncate(fd, (off_t)len) < 0)) {
		int ret = -errno;

		close(fd);
		*error_r = "cannot size the in-flight ledger";
		return ret;
	}
	if ((size_t)st.st_size > len)
		len = (size_t)st.st_size - (size_t)st.st_size % sizeof(struct ledger_slot);
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		*error_r = "cannot map the in-flight ledger";
		return -errno;
	}
	l = xcalloc(1, sizeof(*l));
	l->slots = map;
	l->map_len = len;
	l->n = (unsigned)(len / sizeof(struct ledger_slot));
	l->free_list = xcalloc(l->n, sizeof(int));
	*l_r = l;
	return 0;
}

void ledger_close(struct ledger **lp)
{
	struct ledger *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	munmap(l->slots, l->map_len);
	free(l->free_list);
	free(l);
}

int ledger_claim(struct ledger *l, int64_t event_id, const char *handler)
{
	struct ledger_slot *s;
	int slot;

	if (l == NULL || l->n_free == 0)
		return -1;
	slot = l->free_list[--l->n_free];
	s = &l->slots[slot];
	strncpy(s->handler, handler, LEDGER_NAME_MAX);
	s->handler[LEDGER_NAME_MAX] = '\0';
	/* the id last: a torn entry reads as free */
	atomic_thread_fence(memory_order_release);
	s->event_id = event_id;
	return slot;
}

void ledger_release(struct ledger *l, int slot)
{
	if (l == NULL || slot < 0 || (unsigned)slot >= l->n)
		return;
	l->slots[slot].event_id = 0;
	l->free_list[l->n_free++] = slot;
}

unsigned ledger_take_leftovers(struct ledger *l, ledger_leftover_fn *cb,
			       void *ctx)
{
	unsigned found = 0;

	l->n_free = 0;
	for (unsigned i = l->n; i-- > 0;) {
		struct ledger_slot *s = &l->slots[i];

		if (s->event_id > 0) {
			s->handler[LEDGER_NAME_MAX] = '\0';
			cb(s->event_id, s->handler, ctx);
			found++;
		}
		memset(s, 0, sizeof(*s));
		l->free_list[l->n_free++] = (int)i;
	}
	msync(l->slots, l->map_len, MS_ASYNC);
	return found;
}
