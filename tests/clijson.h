/*
 * clijson.h - for the tests that run the pageleap CLI and check its JSON report
 * (t_bench, t_ycsb): a strict JSON parser, accessors, and running the CLI. Header only,
 * no library or tool: the tests also run as static binaries in the busybox guests.
 *
 * The CLI is $LEAP_CLI if set, else ../pageleap next to the test program
 * (build/tests/t_x -> build/pageleap), else /bin/pageleap (the guests). If none is there
 * the test FAILS and does not skip: the CLI is built with the tests, so a missing one is
 * a build bug.
 */
#ifndef LEAP_TEST_CLIJSON_H
#define LEAP_TEST_CLIJSON_H

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
/* ---- checks: each problem is reported and counted; the test fails at the end ---- */
static int nbad;
#define BAD(...) (nbad++, fprintf(stderr, "%s: FAIL: ", t_name), fprintf(stderr, __VA_ARGS__), \
		  fprintf(stderr, "\n"))

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

/* Runs the CLI with argv (argv[0] is a name) and returns its whole stdout; its stderr
 * passes through to ours. A non-zero exit fails the test, showing the end of stdout. */
static char *run_cli(const char *cli, char *const argv[], size_t *len)
{
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
		fprintf(stderr, "%s: exec %s: %s\n", t_name, cli, strerror(errno));
		_exit(127);
	}
	close(fd[1]);
	char *out = slurp(fd[0], len);
	close(fd[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			FAIL("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "%s: last of its stdout:\n%s\n", t_name, out + (*len > 2000 ? *len - 2000 : 0));
		FAIL("%s %s %s %d", cli, argv[1], WIFEXITED(st) ? "exited with status" : "was killed by signal",
		     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
	return out;
}

/* Parse text (len bytes) as one JSON value; any syntax error fails the test. */
static void parse_json(const char *text, size_t len, struct jv *root)
{
	js = text;
	jn = len;
	jpos = 0;
	parse_val(root, 0);
	ws();
	if (jpos != jn)
		SYNTAX("trailing garbage after the report");
}

#endif /* LEAP_TEST_CLIJSON_H */
