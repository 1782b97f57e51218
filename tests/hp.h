/*
 * hp.h - huge-page setup shared by the huge-page tests: reserve hugetlb pages per node,
 * allow shared-memory THP, and put the machine's settings back at exit. Needs root, or
 * an unprivileged run prepared by root (tests/unpriv.sh sets LEAP_HP_PREPARED after
 * reserving huge pages on every node and allowing shmem THP): then the tests use what was
 * reserved and change nothing, and the cases that change settings (administrator knobs:
 * hp_can_change()) are root's.
 */
#ifndef LEAP_TEST_HP_H
#define LEAP_TEST_HP_H

#include "util.h"

#include <stdbool.h>

#define HP_THP_PATH "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

static long hp_saved[256];
static int hp_saved_n;
static char hp_thp_saved[32];
static bool hp_admin = true; /* root: may change the settings */
static inline bool hp_can_change(void)
{
	return hp_admin;
}

static inline void hp_node_path(char *buf, size_t len, int node, const char *what)
{
	snprintf(buf, len, "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/%s", node,
		 what);
}

static inline long hp_read(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static inline void hp_thp_mode(char *out, size_t len);
static inline int hp_write(const char *path, const char *val)
{
	if (!hp_admin) { /* prepared: fine if it is so already */
		char cur[32];
		hp_thp_mode(cur, sizeof(cur));
		return !strcmp(path, HP_THP_PATH) && !strcmp(cur, val) ? 0 : -EPERM;
	}
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	int rc = fputs(val, f) < 0 ? -EIO : 0;
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	return rc;
}

/* Reserve n hugetlb pages of 2 MiB on node (as root); returns how many it has now. */
static inline long hp_reserve(int node, long n)
{
	char path[128], val[32];
	hp_node_path(path, sizeof(path), node, "nr_hugepages");
	if (!hp_admin) { /* prepared: n of what the harness reserved, if it reserved n */
		long have = hp_read(path);
		return n <= have ? n : have;
	}
	snprintf(val, sizeof(val), "%ld", n);
	hp_write(path, val);
	return hp_read(path);
}

static inline void hp_restore(void)
{
	for (int n = 0; n < hp_saved_n; n++)
		if (hp_saved[n] >= 0) {
			char val[32];
			snprintf(val, sizeof(val), "%ld", hp_saved[n]);
			char path[128];
			hp_node_path(path, sizeof(path), n, "nr_hugepages");
			hp_write(path, val);
		}
	if (hp_thp_saved[0])
		hp_write(HP_THP_PATH, hp_thp_saved);
}

/* The bracketed choice of shmem_enabled ("never", "advise", ...). */
static inline void hp_thp_mode(char *out, size_t len)
{
	char line[256] = "";
	FILE *f = fopen(HP_THP_PATH, "r");
	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = 0;
		fclose(f);
	}
	char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
	out[0] = 0;
	if (a && b && (size_t)(b - a) < len) {
		memcpy(out, a + 1, (size_t)(b - a - 1));
		out[b - a - 1] = 0;
	}
}

/* Remember the settings (restored at exit). Skips without root: the tests must change
 * machine settings, and CI and the guests run them as root. */
static inline void hp_setup(int node_count)
{
	if (geteuid() != 0 && getenv("LEAP_HP_PREPARED")) {
		hp_admin = false;
		return;
	}
	if (geteuid() != 0)
		skip("needs root to reserve hugetlb pages and allow shared-memory THP (or a run "
		     "prepared by root: tests/unpriv.sh)");
	hp_saved_n = node_count < 256 ? node_count : 256;
	for (int n = 0; n < hp_saved_n; n++) {
		char path[128];
		hp_node_path(path, sizeof(path), n, "nr_hugepages");
		hp_saved[n] = hp_read(path);
	}
	hp_thp_mode(hp_thp_saved, sizeof(hp_thp_saved));
	atexit(hp_restore);
}

/* Sum of an smaps field (kB) over the mappings that overlap [lo, hi). */
static inline uint64_t smaps_kb(const void *lo, const void *hi, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		FAIL("open /proc/self/smaps: %s", strerror(errno));
	char line[512];
	size_t flen = strlen(field);
	bool in = false;
	uint64_t sum = 0;
	while (fgets(line, sizeof(line), f)) {
		uintptr_t a, b;
		/* a mapping's header starts with its address in lower-case hex; its fields
		 * ("Rss:", "KernelPageSize:") with a capital */
		if (!(line[0] >= 'A' && line[0] <= 'Z') &&
		    sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &a, &b) == 2) {
			in = a < (uintptr_t)hi && b > (uintptr_t)lo;
			continue;
		}
		if (in && !strncmp(line, field, flen) && line[flen] == ':')
			sum += strtoull(line + flen + 1, NULL, 10);
	}
	fclose(f);
	return sum;
}

#endif
