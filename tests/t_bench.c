/*
 * `pageleap bench --json` end to end: runs the CLI on a small configuration, parses its
 * stdout with the strict JSON parser below, then checks the report. It checks the shape,
 * that every method either ran or says why not, and that the page_leap results are correct
 * (no lost writes, no pages left behind, bounded metadata) and not only fast. The parser is
 * in this file, with no library or tool, because the test also runs as a static binary in
 * the busybox guests.
 *
 * The CLI is $LEAP_CLI if set, else ../pageleap next to this program (build/tests/t_bench
 * -> build/pageleap), else /bin/pageleap (the guests). If none is there the test FAILS and
 * does not skip: the CLI is built with the tests, so a missing one is a build bug.
 * LEAP_BENCH_JSON=FILE checks FILE instead of running the CLI. Use it to work on the schema
 * or these checks without waiting for a benchmark run.
 */
#include "util.h"

#include <ctype.h>
#include <limits.h>
#include <sys/wait.h>

/* ---- JSON: just enough of a tree to check a report ---- */
enum jt { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
static const char *const jt_name[] = { "null", "bool", "number", "string", "array", "object" };
struct jv {
	enum jt t;
	int b;        /* J_BOOL */
	double num;   /* J_NUM */
	char *s;      /* J_STR: escapes decoded, except \uXXXX which is kept as written */
	size_t n;     /* J_ARR, J_OBJ: item count */
	char **keys;  /* J_OBJ */
	struct jv *v; /* J_ARR, J_OBJ: items */
};

static const char *js; /* the text, NUL-terminated; jn bytes (a NUL inside is an error) */
static size_t jn, jpos;
#define SYNTAX(what) FAIL("JSON syntax error at byte %zu: %s (near \"%.32s\")", jpos, what, js + jpos)

static void *grow(void *p, size_t size)
{
	if (!(p = realloc(p, size)))
		FAIL("out of memory");
	return p;
}
static int peek(void) { return jpos < jn ? (unsigned char)js[jpos] : -1; }
static void ws(void) { while (peek() > 0 && strchr(" \t\n\r", peek())) jpos++; }
static int lit(const char *w) /* consumes w if it comes next */
{
	size_t l = strlen(w);
	return jn - jpos >= l && !memcmp(js + jpos, w, l) ? (jpos += l, 1) : 0;
}
static size_t digits(void)
{
	size_t start = jpos;
	while (isdigit(peek()))
		jpos++;
	return jpos - start;
}

static char *parse_str(void)
{
	size_t end = ++jpos; /* past the quote; decoded text is never longer than the raw text */
	while (end < jn && js[end] != '"')
		end += js[end] == '\\' ? 2 : 1;
	char *s = grow(NULL, end - jpos + 1), *o = s;
	for (int c; (c = peek()) != '"'; *o++ = (char)c) {
		if (c < 0x20) /* the end of the text (-1) too */
			SYNTAX(c < 0 ? "unterminated string" : "control character in string");
		jpos++;
		if (c != '\\')
			continue;
		const char *esc = peek() > 0 ? strchr("\"\\/bfnrtu", peek()) : NULL;
		if (!esc)
			SYNTAX("bad escape");
		jpos++;
		if (!(c = "\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrtu"])) { /* \u: check 4 digits, keep */
			for (int i = 0; i < 4; i++, jpos++)
				if (!isxdigit(peek()))
					SYNTAX("\\u needs 4 hex digits");
			memcpy(o, js + jpos - 6, 5);
			o += 5;
			c = js[jpos - 1];
		}
	}
	jpos++;
	*o = 0;
	return s;
}

static double parse_num(void)
{
	size_t start = jpos;
	lit("-");
	if (!lit("0") && !digits()) /* no leading zeros, as JSON says */
		SYNTAX("bad number");
	if (lit(".") && !digits())
		SYNTAX("digit expected after '.'");
	if ((lit("e") || lit("E")) && (lit("+") || lit("-") || 1) && !digits()) /* sign optional */
		SYNTAX("digit expected in exponent");
	/* the grammar is checked above; strtod only converts (C locale: '.' is the point) */
	return strtod(js + start, NULL);
}

static void parse_val(struct jv *v, int depth)
{
	memset(v, 0, sizeof(*v));
	if (depth > 64) /* a report is shallow; this keeps garbage from eating the stack */
		SYNTAX("nested too deep");
	ws();
	int c = peek(), obj = c == '{';
	if (c == '{' || c == '[') {
		v->t = obj ? J_OBJ : J_ARR;
		jpos++;
		ws();
		if (lit(obj ? "}" : "]"))
			return;
		for (size_t cap = 0;; jpos++) { /* jpos++ steps over the ',' */
			if (v->n == cap) {
				v->v = grow(v->v, (cap = cap ? 2 * cap : 8) * sizeof(*v->v));
				v->keys = obj ? grow(v->keys, cap * sizeof(char *)) : NULL;
			}
			if (obj) {
				ws();
				if (peek() != '"')
					SYNTAX("object key expected");
				v->keys[v->n] = parse_str();
				ws();
				if (!lit(":"))
					SYNTAX("':' expected");
			}
			parse_val(&v->v[v->n++], depth + 1);
			ws();
			if (lit(obj ? "}" : "]"))
				return;
			if (peek() != ',')
				SYNTAX(obj ? "',' or '}' expected" : "',' or ']' expected");
		}
	} else if (c == '"') {
		v->t = J_STR;
		v->s = parse_str();
	} else if (c == '-' || isdigit(c)) {
		v->t = J_NUM;
		v->num = parse_num();
	} else if (lit("true") || lit("false")) {
		v->t = J_BOOL;
		v->b = c == 't';
	} else if (!lit("null")) {
		SYNTAX("value expected");
	}
}

static void jfree(struct jv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		jfree(&v->v[i]);
		free(v->keys ? v->keys[i] : NULL);
	}
	free(v->v);
	free(v->keys);
	free(v->s);
}

/* ---- checks: each problem is reported and counted; the test fails at the end ---- */
static int nbad;
#define BAD(...) (nbad++, fprintf(stderr, "t_bench: FAIL: "), fprintf(stderr, __VA_ARGS__), \
		  fprintf(stderr, "\n"))

static const struct jv *get(const struct jv *o, const char *k)
{
	for (size_t i = 0; o && o->t == J_OBJ && i < o->n; i++)
		if (!strcmp(o->keys[i], k))
			return &o->v[i];
	return NULL;
}
static const struct jv *typed(const struct jv *o, const char *k, enum jt t)
{
	const struct jv *v = get(o, k);
	return v && v->t == t ? v : NULL;
}
static double num(const struct jv *v) { return v && v->t == J_NUM ? v->num : -1; }
static const char *str(const struct jv *v) { return v && v->t == J_STR ? v->s : ""; }
static int near1(double x) { return x - 1 < 1e-9 && 1 - x < 1e-9; }

/*
 * o must be an object with the keys in spec, "key:type ...". The types are 0 (null),
 * b (bool), n (number), s (string), a (array), o (object), N (array of numbers) and
 * 1 (number >= 1). A trailing ? also allows null. Skips an o that is NULL: its parent
 * already reported it.
 */
static void shape(const struct jv *o, const char *where, const char *spec)
{
	if (o && o->t != J_OBJ)
		BAD("%s: want object, found %s", where, jt_name[o->t]);
	char k[64], ty[3];
	for (int used; o && o->t == J_OBJ && sscanf(spec, " %63[^:]:%2s%n", k, ty, &used) == 2;
	     spec += used) {
		const char *codes = "0bnsao", *c = strchr(codes, ty[0]);
		enum jt t = c ? (enum jt)(c - codes) : ty[0] == 'N' ? J_ARR : J_NUM;
		const struct jv *v = get(o, k);
		if (!v || (v->t != t && !(ty[1] == '?' && v->t == J_NULL)))
			BAD("%s.%s: want %s%s, found %s", where, k, jt_name[t],
			    ty[1] == '?' ? " or null" : "", v ? jt_name[v->t] : "no such key");
		else if (ty[0] == '1' && v->t == J_NUM && v->num < 1)
			BAD("%s.%s: want >= 1, found %g", where, k, v->num);
		for (size_t i = 0; v && ty[0] == 'N' && v->t == J_ARR && i < v->n; i++)
			if (v->v[i].t != J_NUM)
				BAD("%s.%s[%zu]: want number, found %s", where, k, i, jt_name[v->v[i].t]);
	}
}
/* Numbers of o that must not decrease in this order (min <= median <= max, quantiles). */
static void rising(const struct jv *o, const char *where, const char *const *ks, int n)
{
	for (int i = 1; i < n; i++) {
		const struct jv *a = typed(o, ks[i - 1], J_NUM), *b = typed(o, ks[i], J_NUM);
		if (a && b && b->num < a->num)
			BAD("%s: %s is %g, below %s %g", where, ks[i], b->num, ks[i - 1], a->num);
	}
}

static void check_result(const struct jv *r, size_t i)
{
	char w[128], sub[160];
	const char *m = str(get(r, "method"));
	snprintf(w, sizeof(w), "results[%zu] (%s)", i, m);
	shape(r, w, "method:s page_kib:n size_mib:n writers:n status:s");
	const struct jv *st = typed(r, "status", J_STR);
	if (st && !*st->s)
		BAD("%s.status: empty; a method that did not run must say why", w);
	/* measurements are there when the method ran (status "ok"), and null when it did not */
	if (!st || strcmp(st->s, "ok")) {
		shape(r, w, "reps:0 seconds:0 pages_per_s:0 pages:0 pages_left:0 lost_writes:0 cpu_s:0 "
			    "vs_move_pages:0 vs_memcpy:0 metadata_bytes_per_page:0 gbps:0 stall:0");
		return;
	}
	shape(r, w, "reps:n seconds:n pages_per_s:n pages:n pages_left:n lost_writes:n cpu_s:n "
		    "vs_move_pages:n? vs_memcpy:n? metadata_bytes_per_page:n? gbps:o stall:o");
	const struct jv *g = typed(r, "gbps", J_OBJ), *s = typed(r, "stall", J_OBJ);
	snprintf(sub, sizeof(sub), "%s.gbps", w);
	shape(g, sub, "min:n median:n max:n");
	rising(g, sub, (const char *const[]){ "min", "median", "max" }, 3);
	/* zero only where nothing moved: automatic balancing may move nothing before its
	 * timeout (seen in loaded emulated guests); then every page must be reported left */
	double med = g ? num(get(g, "median")) : 0;
	if (g && !(med > 0) &&
	    !(!strcmp(m, "autonuma") && med == 0 && num(get(r, "pages_left")) == num(get(r, "pages"))))
		BAD("%s.median: want > 0 (or 0 with every page left, autonuma only), found %g", sub, med);
	snprintf(sub, sizeof(sub), "%s.stall", w);
	shape(s, sub, "count:n p50_us:n p90_us:n p99_us:n p999_us:n max_us:n");
	rising(s, sub, (const char *const[]){ "p50_us", "p90_us", "p99_us", "p999_us", "max_us" }, 5);
	/* correctness, not only speed: a fast move that loses a write or leaves pages is a bug */
	double lost = num(get(r, "lost_writes")), left = num(get(r, "pages_left"));
	const struct jv *meta = typed(r, "metadata_bytes_per_page", J_NUM);
	if (!strncmp(m, "page_leap", 9) && (lost || left || !meta || meta->num >= 8))
		BAD("%s: want lost_writes 0, pages_left 0, metadata_bytes_per_page < 8; found %g, %g, %s",
		    w, lost, left, meta ? "a number" : "no number");
	if ((!strncmp(m, "move_pages", 10) || !strcmp(m, "mbind")) && lost)
		BAD("%s: lost_writes %g, want 0", w, lost);
	/* the baselines compare with themselves */
	if (!strcmp(m, "memcpy") && !near1(num(get(r, "vs_memcpy"))))
		BAD("%s: vs_memcpy %g, want 1", w, num(get(r, "vs_memcpy")));
	if (!strcmp(m, "move_pages") && !near1(num(get(r, "vs_move_pages"))))
		BAD("%s: vs_move_pages %g, want 1", w, num(get(r, "vs_move_pages")));
}

/* The first result for method m with 4 KiB pages, 16 MiB and wr writers. */
static const struct jv *find(const struct jv *res, const char *m, int wr)
{
	for (size_t i = 0; res && i < res->n; i++) {
		const struct jv *r = &res->v[i];
		if (!strcmp(str(get(r, "method")), m) && num(get(r, "page_kib")) == 4 &&
		    num(get(r, "size_mib")) == 16 && num(get(r, "writers")) == wr)
			return r;
	}
	return NULL;
}
/* That result must be there, with this status unless status is NULL. */
static void need(const struct jv *res, const char *m, int wr, const char *status)
{
	const struct jv *r = find(res, m, wr);
	if (!r)
		BAD("no result for %s with 4 KiB pages, 16 MiB, %d writer(s)", m, wr);
	else if (status && strcmp(str(get(r, "status")), status))
		BAD("%s (4 KiB pages, 16 MiB, %d writer(s)): status \"%s\", want \"%s\"", m, wr,
		    str(get(r, "status")), status);
}

/* ---- getting the report ---- */
static char *slurp(int fd, size_t *len)
{
	size_t cap = 0, n = 0;
	char *b = NULL;
	for (ssize_t k = 1; k > 0; n += (size_t)k) {
		if (cap - n < 4096)
			b = grow(b, cap = cap ? 2 * cap : 1 << 16);
		while ((k = read(fd, b + n, cap - n - 1)) < 0 && errno == EINTR)
			;
		if (k < 0)
			FAIL("read: %s", strerror(errno));
	}
	b[*len = n] = 0;
	return b;
}

static const char *find_cli(char *buf, size_t size)
{
	const char *env = getenv("LEAP_CLI");
	if (env && *env) {
		if (access(env, X_OK))
			FAIL("LEAP_CLI=%s is not an executable file", env);
		return env;
	}
	ssize_t n = readlink("/proc/self/exe", buf, size - 16);
	char *slash = n > 0 ? (buf[n] = 0, strrchr(buf, '/')) : NULL;
	if (slash && (strcpy(slash, "/../pageleap"), !access(buf, X_OK)))
		return buf;
	if (!access("/bin/pageleap", X_OK))
		return "/bin/pageleap";
	FAIL("no pageleap CLI found: not $LEAP_CLI, not ../pageleap next to this test, not /bin/pageleap");
}

/* Runs the CLI and returns its whole stdout; its stderr passes through to ours. */
static char *run_cli(const char *cli, size_t *len)
{
	/* no warm-up: the shape is checked, not the speed, and the guests' kernel methods
	 * (move_pages one page per call under emulation) took minutes warming up */
	char *const argv[] = { "pageleap", "bench", "--json", "--sizes", "16", "--reps", "1",
			       "--warmup", "0", "--writers", "0,1", "--autonuma-timeout", "5",
			       NULL };
	say("running %s bench --json --sizes 16 --reps 1 --warmup 0 --writers 0,1 "
	    "--autonuma-timeout 5", cli);
	int fd[2], st;
	if (pipe(fd))
		FAIL("pipe: %s", strerror(errno));
	fflush(NULL); /* or the child would print our buffered output again */
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execv(cli, argv);
		fprintf(stderr, "t_bench: exec %s: %s\n", cli, strerror(errno));
		_exit(127);
	}
	close(fd[1]);
	char *out = slurp(fd[0], len);
	close(fd[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			FAIL("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "t_bench: last of its stdout:\n%s\n", out + (*len > 2000 ? *len - 2000 : 0));
		FAIL("%s bench %s %d", cli, WIFEXITED(st) ? "exited with status" : "was killed by signal",
		     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
	return out;
}

int main(void)
{
	t_name = "t_bench";
	/* [0, ANYWHERE) run on any machine, [ANYWHERE, TWO_NODES) need 2 nodes with memory,
	 * autonuma also needs kernel support, so it may say why it did not run */
	static const char *const methods[] = { "page_leap", "page_leap_cold", "page_leap_4k",
		"page_leap_64k", "page_leap_2m", "copy_mremap", "memcpy", "move_pages",
		"move_pages_b1", "move_pages_b64", "move_pages_b512", "mbind", "autonuma" };
	enum { ANYWHERE = 7, TWO_NODES = 12 };
	const char *file = getenv("LEAP_BENCH_JSON");
	char path[PATH_MAX + 16], *text;
	if (file && *file) {
		int fd = open(file, O_RDONLY);
		if (fd < 0)
			FAIL("LEAP_BENCH_JSON=%s: %s", file, strerror(errno));
		say("checking %s instead of running the CLI (LEAP_BENCH_JSON)", file);
		text = slurp(fd, &jn);
		close(fd);
	} else {
		text = run_cli(find_cli(path, sizeof(path)), &jn);
	}
	struct jv root;
	js = text;
	parse_val(&root, 0);
	ws();
	if (jpos != jn)
		SYNTAX("trailing garbage after the report");

	if (root.t != J_OBJ)
		FAIL("report: want an object, found %s", jt_name[root.t]);
	shape(&root, "report", "tool:s version:s machine:o config:o results:a targets:a");
	const struct jv *tool = typed(&root, "tool", J_STR), *mach = typed(&root, "machine", J_OBJ);
	const struct jv *res = typed(&root, "results", J_ARR), *tg = typed(&root, "targets", J_ARR);
	if (tool && strcmp(tool->s, "pageleap bench"))
		BAD("report.tool: \"%s\", want \"pageleap bench\"", tool->s);
	shape(mach, "machine", "kernel:s nodes:1 memory_nodes:1 cpus:1 emulated:b");
	shape(typed(&root, "config", J_OBJ), "config",
	      "quick:b from:n to:n reps:n warmup:n sizes_mib:N writers:N page_kib:N");
	if (res && !res->n)
		BAD("report.results: empty");
	for (size_t i = 0; res && i < res->n; i++)
		check_result(&res->v[i], i);
	int met = 0;
	for (size_t i = 0; tg && i < tg->n; i++) {
		char w[32];
		snprintf(w, sizeof(w), "targets[%zu]", i);
		shape(&tg->v[i], w, "name:s goal:s measured:n? met:b? note:s");
		met += typed(&tg->v[i], "met", J_BOOL) && typed(&tg->v[i], "met", J_BOOL)->b;
	}

	/* every method is there, and ran where it can; memory_nodes decides what "can" means */
	int memnodes = (int)num(get(mach, "memory_nodes"));
	for (int k = 0; k < (int)(sizeof(methods) / sizeof(*methods)); k++)
		need(res, methods[k], 0, k < ANYWHERE || (k < TWO_NODES && memnodes >= 2) ? "ok"
					 : memnodes == 1 ? "needs 2 nodes" /* autonuma too */
							 : NULL);
	const struct jv *pl = find(res, "page_leap", 0), *mc = find(res, "memcpy", 0);
	if (memnodes >= 2 && pl && !typed(pl, "vs_move_pages", J_NUM))
		BAD("page_leap (4 KiB pages, 16 MiB, 0 writers): vs_move_pages is not a number");
	/* moving memory that a thread is writing is what page_leap is for: it must run */
	need(res, "page_leap", 1, "ok");

	const struct jv *emu = typed(mach, "emulated", J_BOOL);
	say("measured %s: %d nodes, %d with memory, %d cpus; %zu results, %zu targets (%d met); "
	    "autonuma: %s", str(get(mach, "kernel")), (int)num(get(mach, "nodes")), memnodes,
	    (int)num(get(mach, "cpus")), res ? res->n : 0, tg ? tg->n : 0, met,
	    str(get(find(res, "autonuma", 0), "status")));
	say("measured page_leap %.2f GB/s, memcpy %.2f GB/s (16 MiB, emulated=%s)",
	    num(get(get(pl, "gbps"), "median")), num(get(get(mc, "gbps"), "median")),
	    emu ? (emu->b ? "true" : "false") : "?");
	jfree(&root);
	free(text);
	if (nbad)
		FAIL("%d problem(s) in the report, listed above", nbad);
	return 0;
}
