#!/bin/sh
# The architecture check, from what the compiler produced rather than from what the code
# says: the call graph between the library's files (each object's undefined symbols
# against the others' definitions, nm), and the includes between its folders.
# Fails when
#   - files call each other in a circle (a -> b -> ... -> a), or folders do;
#   - a file includes another folder's header other than that folder's one header
#     (src/F/F.h), or a header of a folder that is not below it in the layering;
#   - a file outside src/os calls a raw system call (syscall, ioctl, mmap, munmap,
#     madvise, mbind, fallocate, poll, pipe2, read, write, open, close).
# Calls through function pointers (walker operations, worker items) are not edges: that
# is how a lower layer runs a higher one's code without depending on it.
# Run by `make all` (a stamp in the build folder); `make layout` prints the graph.
# usage: layout.sh [-v] OBJECT.o...   (objects named <folder>/<file>.o)
verbose=
[ "${1:-}" = -v ] && { verbose=1; shift; }
[ $# -gt 0 ] || { echo "usage: layout.sh [-v] OBJECT.o..." >&2; exit 2; }
tmp=${TMPDIR:-/tmp}/leap-layout.$$
trap 'rm -f "$tmp".*' EXIT
fail=0
# the folders from the bottom up: a folder may use only those before it
order="util os topo wp core coord measure"
rank() { i=0; for f in $order; do [ "$f" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo 99; }

: >"$tmp.def"
: >"$tmp.use"
for o in "$@"; do
	f=$(basename "$(dirname "$o")")/$(basename "$o" .o)
	nm --defined-only -g "$o" | awk -v f="$f" 'NF == 3 { print $3, f }' >>"$tmp.def"
	nm -u "$o" | awk -v f="$f" '{ print f, $NF }' >>"$tmp.use"
done
# file -> file edges (a file's use of its own symbols is not an edge)
awk 'NR == FNR { def[$1] = $2; next } ($2 in def) && def[$2] != $1 { print $1, def[$2] }' \
	"$tmp.def" "$tmp.use" | sort -u >"$tmp.edges"
[ -n "$verbose" ] && awk '{ a[$1] = a[$1] " " $2 } END { for (k in a) print k " ->" a[k] }' \
	"$tmp.edges" | sort
# circles: transitive closure over the files; a file that reaches itself is in one
awk '{ e[$1, $2] = 1; n[$1] = 1; n[$2] = 1 }
END {
	for (k in n) for (i in n) if ((i, k) in e) for (j in n) if ((k, j) in e) e[i, j] = 1
	for (i in n) if ((i, i) in e) { printf "layout: %s is in a circle of calls:", i
		for (j in n) if (j != i && (i, j) in e && (j, i) in e) printf " %s", j
		print ""; bad = 1 }
	exit bad
}' "$tmp.edges" >&2 || fail=1
# folders: an edge must go down the layering (or stay inside the folder)
while read -r a b; do
	fa=${a%%/*} fb=${b%%/*}
	[ "$fa" = "$fb" ] && continue
	if [ "$(rank "$fb")" -ge "$(rank "$fa")" ]; then
		echo "layout: $a calls $b: $fa may only use the folders below it ($order)" >&2
		fail=1
	fi
done <"$tmp.edges"
# includes: only a folder's one header, and only folders below
for c in src/*/*.c src/*/*.h; do
	fa=$(basename "$(dirname "$c")")
	for h in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$c"); do
		[ "$h" = pageleap.h ] && continue
		fb=${h%%/*}
		if [ "$h" != "$fb/$fb.h" ]; then
			echo "layout: $c includes \"$h\": include a folder's header, $fb/$fb.h" >&2
			fail=1
		elif [ "$fa" != "$fb" ] && [ "$(rank "$fb")" -ge "$(rank "$fa")" ]; then
			echo "layout: $c includes \"$h\": $fa may only use the folders below it" >&2
			fail=1
		fi
	done
done
# raw system calls only in src/os
raw='syscall|ioctl|mmap|mmap64|munmap|madvise|mbind|fallocate|fallocate64|poll|pipe2|read|write|open|open64|close|memfd_create|ftruncate|ftruncate64'
grep -v '^os/' "$tmp.use" | awk -v re="^($raw)(@.*)?$" '$2 ~ re { print "layout: " $1 " calls " $2 "(): raw system calls belong in src/os"; bad = 1 } END { exit bad }' >&2 || fail=1
[ $fail -eq 0 ] && echo "layout: $(wc -l <"$tmp.edges") calls between $# files, no circle; folders layered $order; raw system calls only in src/os"
exit $fail
