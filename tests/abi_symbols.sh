#!/bin/sh
# The symbol map check: the functions defined with LEAP_API in src/, the names listed in
# src/libpageleap.map and the names the built shared library exports must be one set.
# A LEAP_API function missing from the map would stay local (callers fail to link); a map
# entry defined nowhere is a stale name; a glob would export whatever matches it.
# Run by `make all` (a stamp in the build folder); needs nm.
# usage: abi_symbols.sh MAP LIBRARY.so SOURCE.c...
map=${1:?map} lib=${2:?library}
shift 2
tmp=${TMPDIR:-/tmp}/leap-abi-symbols.$$
trap 'rm -f "$tmp".*' EXIT
fail=0
# LEAP_API [type] name(  -- one definition per line, the name right before "("
grep -ho '^LEAP_API[^(]*(' "$@" | sed -E 's/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)\($/\1/' |
	sort >"$tmp.api"
# the names between "global:" and "local:", comments and blank lines aside
sed -e 's,/\*.*\*/,,' "$map" | awk '/\/\*/ { c = 1 } c { if (/\*\//) c = 0; next }
	/global:/ { g = 1; next } /local:/ || /^[ \t]*}/ { g = 0 } g' | tr -d ' \t;' | grep -v '^$' |
	sort >"$tmp.map"
nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
	sort >"$tmp.so"
if grep -q '[*?[]' "$tmp.map"; then
	echo "abi_symbols: $map: a glob among the global names: list each symbol" >&2
	fail=1
fi
for n in $(comm -23 "$tmp.api" "$tmp.map"); do
	echo "abi_symbols: $n is LEAP_API in src/ but not in $map" >&2
	fail=1
done
for n in $(comm -13 "$tmp.api" "$tmp.map"); do
	echo "abi_symbols: $map names $n, which no LEAP_API definition in src/ defines" >&2
	fail=1
done
if ! cmp -s "$tmp.map" "$tmp.so"; then
	echo "abi_symbols: $lib exports other names than $map lists:" >&2
	diff "$tmp.map" "$tmp.so" | sed 's/^/    /' >&2
	fail=1
fi
[ "$fail" -eq 0 ] && echo "abi_symbols: $(wc -l <"$tmp.map") symbols: src/, the map and $lib agree"
exit "$fail"
