#!/usr/bin/env bash
# fio.sh - the real, unmodified fio with its I/O buffers in a pageleap region that keeps
# migrating (the LD_PRELOAD shim tests/fio_shim.c, built as BUILD_DIR/tests/fio_shim.so),
# doing O_DIRECT I/O with --verify=crc32c on a file of a disk file system (issue 19).
#
# Cases (each must end with fio's exit status 0, no job error, 0 verify errors, and the
# shim's summary showing moves > 0 and no library error):
#   aio-randwrite   libaio random writes, each block read back and verified (a verify
#                   backlog, so reads and writes are in flight together); reads declared
#   aio-randread    libaio random reads of a file written earlier (without the shim),
#                   every block verified; reads declared
#   uring-fixedbufs io_uring with registered buffers (--fixedbufs), random writes and
#                   verify reads; the buffers declared LEAP_IO_LONGTERM, so moves skip
#                   their pages (skipped busy) and move the rest of the region
#   write-only      libaio writes with nothing declared (a direct write needs no
#                   declaration), then a verify pass over the file without the shim
# Long mode only, informational (never pass/fail): what the migration does to direct
# reads nobody declares: libaio reads with LEAP_SHIM_DECLARE=0, and io_uring reads into
# plain buffers, which the shim cannot declare (see fio_shim.c); fio's verify failures
# are counted.
#
# Pass/fail depends on no timing: sizes fix the work, and the shim does not let fio unmap
# a region before its mover finished a move. Prints a table: case, I/Os, verify errors,
# moves, pages moved, pages skipped busy (declared LONGTERM), and how many times a move
# waited for declared I/O to end.
#
# usage: tests/fio.sh [--long] [BUILD_DIR]     (make check-local: short; make check-fio: long)
# Exit 0 pass, 1 fail (fio missing included), 77 skip (the library cannot move pages for
# this user: no userfaultfd write protection).
# The files live in a temporary directory under ${TMPDIR:-/var/tmp}, which must be on a
# disk file system (O_DIRECT on tmpfs copies through the page tables: nothing to test).
# LEAP_FIO_DEV=/dev/X: a block device instead (the virtio disk of the emulated-NUMA
# guests, which have no disk file system), OVERWRITTEN: the read cases' file is its first
# part, the other cases' file the part after it, which they share. Where the device is too
# small the sizes shrink to fit it (the 2-node guest's 32 MiB disk: files of 8 MiB, the
# read file 24); fio's JSON and logs still go to a temporary directory, then under
# ${TMPDIR:-/tmp} on any file system.
set -u

mode=short
if [ "${1:-}" = --long ]; then
	mode=long
	shift
fi
B=${1:-build}

die() {
	echo "fio.sh: $*" >&2
	exit 1
}

command -v fio >/dev/null 2>&1 ||
	die "fio is not installed; this test needs it (Debian: apt-get install fio, or make deps)"
[ -f "$B/tests/fio_shim.so" ] || die "$B/tests/fio_shim.so is missing: run make first"
shim=$(cd "$B/tests" && pwd)/fio_shim.so

dev=${LEAP_FIO_DEV:-}
if [ -n "$dev" ]; then
	[ -b "$dev" ] || die "LEAP_FIO_DEV=$dev is not a block device"
	bytes=$(blockdev --getsize64 "$dev") || die "cannot read the size of $dev"
	devmib=$((bytes / 1048576))
	tmp=${TMPDIR:-/tmp}
else
	tmp=${TMPDIR:-/var/tmp}
fi
dir=$(mktemp -d "$tmp/leap-fio.XXXXXX") || die "no directory under $tmp"
trap 'rm -rf "$dir"' EXIT
if [ -n "$dev" ]; then
	where="on $dev (block device, $devmib MiB, overwritten)"
else
	fs=$(stat -f -c %T "$dir")
	case $fs in
	tmpfs | ramfs) die "$dir is on $fs: O_DIRECT needs a disk file system (set TMPDIR)" ;;
	esac
	where="in $dir ($fs)"
fi

# Sizes fix the work. fio's buffer is bs x iodepth (1 MiB here: the shim takes mappings of
# 1 MiB and more); the files are far larger than the buffer, so every buffer slot is
# reused thousands of times while its pages move. The writing cases pass over their file
# `loops` times; a read job with verify reads its file once whatever --loops says, so the
# read cases get a file `loops` times as large instead.
if [ "$mode" = long ]; then
	mib=512 loops=4
else
	mib=64 loops=3
fi
# On a device the read file (mib x loops) and the shared part (mib) must fit; a file must
# still hold the probe's 4 MiB, several times the 1 MiB buffer.
if [ -n "$dev" ] && [ $((mib * (loops + 1))) -gt "$devmib" ]; then
	mib=$((devmib / (loops + 1)))
	[ "$mib" -ge 4 ] || die "$dev ($devmib MiB) is too small: at least $((4 * (loops + 1))) MiB"
fi
size=${mib}M rsize=$((mib * loops))M
# --iomem=mmap: fio 3.33 maps its buffer MAP_PRIVATE | MAP_ANONYMOUS, which is what the
# shim takes; --iomem=mmapshared without a file makes the very same call (fio_shim.c).
# --thread: one process, the one the shim is in. continue_on_error=verify: every failed
# verify is counted (total_err) instead of the first one ending the job.
common=(--thread --iomem=mmap --direct=1 --bs=64k --iodepth=16 --verify=crc32c
	--continue_on_error=verify --verify_state_save=0 --output-format=json)

fails=0
rows=()

# A number from fio's JSON (one job): the sum of every "key" : N.
jsum() {
	grep -o "\"$1\" : [0-9]*" "$2" | awk '{ s += $3 } END { print s + 0 }'
}
# A field of the shim's summary line (in fio's stderr).
shimval() {
	grep '^leap-shim: regions=' "$2" | tail -n 1 | grep -o "\b$1=[0-9]*" | cut -d= -f2
}

# on FILE: sets the array `on` to fio's arguments for the data file FILE: the file in
# $dir, or on a device its part (read.dat first, every other file the part after it).
on() {
	if [ -z "$dev" ]; then
		on=(--filename="$dir/$1")
	elif [ "$1" = read.dat ]; then
		on=(--filename="$dev" --offset=0)
	else
		on=(--filename="$dev" --offset="$rsize")
	fi
}

# run_fio NAME DECLARE(0/1/-: no shim) FIO-ARGS...: runs fio; sets ios, verr, rc, jerr
# and the shim's moves, moved, skipped, waits, serr (empty without the shim).
run_fio() {
	local name=$1 decl=$2
	shift 2
	local out=$dir/$name.json err=$dir/$name.err
	if [ "$decl" = - ]; then
		fio --name="$name" "${common[@]}" --output="$out" "$@" 2>"$err"
	else
		LEAP_SHIM_DECLARE=$decl LD_PRELOAD=$shim \
			fio --name="$name" "${common[@]}" --output="$out" "$@" 2>"$err"
	fi
	rc=$?
	ios=$(jsum total_ios "$out")
	# with continue_on_error=verify fio counts each failed verify in total_err; its
	# messages ("verify: bad header", "crc32c: verify failed") go to the output file
	verr=$(jsum total_err "$out")
	jerr=$(jsum error "$out")
	moves=$(shimval moves "$err") moved=$(shimval pages_moved "$err")
	skipped=$(shimval skipped_busy "$err") waits=$(shimval waits "$err")
	serr=$(shimval errors "$err")
}

# judge NAME [noshim]: the last run_fio must have passed; prints why not.
judge() {
	local name=$1 noshim=${2:-} why=
	[ "$rc" -eq 0 ] || why="$why fio exit $rc;"
	[ "$jerr" -eq 0 ] || why="$why job error $jerr;"
	[ "$verr" -eq 0 ] || why="$why $verr verify errors;"
	if grep -qE 'verify failed|bad header|bad magic' "$dir/$name.json" "$dir/$name.err"; then
		why="$why verify failures reported;"
	fi
	if [ -n "$noshim" ]; then
		:
	elif [ -z "$moves" ]; then
		why="$why no summary from the shim;"
	else
		[ "$moves" -gt 0 ] || why="$why no move happened;"
		[ "$serr" -eq 0 ] || why="$why the shim met library errors;"
	fi
	if [ -n "$why" ]; then
		echo "FAIL fio/$name:$why"
		sed 's/^/     /' "$dir/$name.err" | tail -n 15
		grep -E 'verify|error' "$dir/$name.json" | head -n 5 | sed 's/^/     /'
		fails=$((fails + 1))
		return 1
	fi
	return 0
}

# the table: case, I/Os, verify errors, moves, pages moved, skipped busy, waits, result
fmt='%-19s %9s %8s %7s %11s %8s %6s  %s'
row() {
	rows+=("$(printf "$fmt" "$@")")
}

# run_case NAME: runs the function case_NAME (dashes as underscores) and reports it.
run_case() {
	local name=$1 start=$SECONDS
	if "case_${name//-/_}"; then
		echo "PASS fio/$name ($((SECONDS - start))s)"
		row "$name" "$ios" "$verr" "$moves" "$moved" "$skipped" "$waits" pass
	else
		row "$name" "$ios" "$verr" "${moves:--}" "${moved:--}" "${skipped:--}" "${waits:--}" FAIL
	fi
}

# A file written by fio (no shim), for the read cases: its blocks carry verify headers.
prefill() {
	on "$1"
	fio --name=prefill "${common[@]}" --output="$dir/prefill.json" --ioengine=libaio \
		"${on[@]}" --size="$rsize" --rw=write --do_verify=0 2>"$dir/prefill.err" ||
		die "writing $1 failed: $(tail -n 3 "$dir/prefill.err")"
}

case_aio_randwrite() {
	on rw.dat
	run_fio aio-randwrite 1 --ioengine=libaio "${on[@]}" --size="$size" \
		--rw=randwrite --verify_backlog=64 --loops="$loops"
	judge aio-randwrite
}

case_aio_randread() {
	on read.dat
	run_fio aio-randread 1 --ioengine=libaio "${on[@]}" --size="$rsize" \
		--rw=randread
	judge aio-randread
}

case_uring_fixedbufs() {
	on uring.dat
	run_fio uring-fixedbufs 1 --ioengine=io_uring --fixedbufs "${on[@]}" \
		--size="$size" --rw=randwrite --verify_backlog=64 --loops="$loops"
	judge uring-fixedbufs
}

case_write_only() {
	on write.dat
	run_fio write-only 0 --ioengine=libaio "${on[@]}" --size="$size" \
		--rw=write --do_verify=0 --loops="$loops"
	judge write-only || return 1
	local w_ios=$ios w_moves=$moves w_moved=$moved w_skipped=$skipped w_waits=$waits
	# the check: every block as the disk has it, read without the shim
	run_fio write-verify - --ioengine=libaio "${on[@]}" --size="$size" \
		--rw=read
	judge write-verify noshim || return 1
	ios=$((w_ios + ios)) moves=$w_moves moved=$w_moved skipped=$w_skipped waits=$w_waits
}

# informational: a count, whatever it is
info() {
	local name=$1 start=$SECONDS
	shift
	run_fio "$name" "$@"
	local note="info: fio exit $rc"
	grep -q 'warning: io_uring ring' "$dir/$name.err" && note="$note; shim: ring not declared"
	echo "INFO fio/$name: $verr verify errors in $ios I/Os, $moves moves ($((SECONDS - start))s)"
	row "$name" "$ios" "$verr" "${moves:--}" "${moved:--}" "${skipped:--}" "${waits:--}" "$note"
}

# Can this user move pages that a program writes? Moving needs userfaultfd write
# protection, which an unprivileged user lacks under vm.unprivileged_userfaultfd=0 unless
# /dev/userfaultfd is open to it; the library then refuses every move (EOPNOTSUPP) and
# there is nothing to test: skip, like the other tests, with the library's reason.
probe() {
	on probe.dat
	run_fio probe 1 --ioengine=libaio "${on[@]}" --size=4M --rw=write \
		--do_verify=0
	if [ "$(shimval first_error "$dir/probe.err")" = 95 ]; then
		echo "SKIP fio: the library cannot move pages here: $(grep -m1 'leap-shim: page_leap' \
			"$dir/probe.err" | sed 's/^leap-shim: page_leap: //')"
		exit 77
	fi
}

start=$SECONDS
probe
echo "fio.sh: $mode mode, $(fio --version), files of $size x $loops passes (reads: $rsize)," \
	"$where"
# where the shim's moves go (its summary's nodes=): the log says which kind of move ran
nodes=$(shimval nodes "$dir/probe.err")
case $nodes in
'' | 0) ;;
1) echo "fio.sh: one node with memory: the shim relocates the buffers within it (fresh pages)" ;;
*) echo "fio.sh: the shim moves the buffers between the $nodes nodes with memory, in turn" ;;
esac
prefill read.dat
run_case aio-randwrite
run_case aio-randread
run_case uring-fixedbufs
run_case write-only
if [ "$mode" = long ]; then
	on read.dat
	info aio-read-undeclared 0 --ioengine=libaio "${on[@]}" --size="$rsize" \
		--rw=randread
	info uring-read-plain 1 --ioengine=io_uring "${on[@]}" --size="$rsize" \
		--rw=randread
fi

echo
printf "$fmt\n" case I/Os verify moves "pages moved" skipped waits result
printf "$fmt\n" "" "" errors "" "" busy "" ""
printf '%s\n' "${rows[@]}"
echo "fio.sh: $mode mode took $((SECONDS - start))s; $fails failed"
[ "$fails" -eq 0 ]
