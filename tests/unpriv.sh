#!/bin/sh
# The test suite as an ordinary user (nobody, uid 65534), in each write-protection mode
# the library supports for one (pageleap(7), "Unprivileged operation"):
#   device  /dev/userfaultfd granted to the user's group (the administrator's one-line
#           grant): full protection, as root has it
#   user    nothing granted, PAGELEAP_WP=user: user-mode-only protection
#   none    nothing granted, nothing opted in: t_unpriv checks the refusals and their
#           causes (the other tests move with writers, which this mode refuses)
# Root prepares what only root may do, as an administrator would, and puts it all back at
# exit: huge pages reserved on every node and shmem THP allowed (LEAP_HP_PREPARED), the
# file systems t_extpool needs mounted for the user (LEAP_EXTPOOL_DIR), the device's
# group and mode. The tests run from a copy the user can read.
# usage: unpriv.sh BUILD_DIR    (as root; a user that is not root is already the case
# this covers, and the script says so and exits 0)
set -eu
b=${1:?build dir}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "unpriv: not root: the run of the tests above was already unprivileged"
	exit 0
fi
uid=65534
dev=/dev/userfaultfd
work=$(mktemp -d /tmp/pageleap-unpriv.XXXXXX)
thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
thp_saved=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$thp" 2>/dev/null || true)
dev_saved=$(stat -c '%g %a' "$dev" 2>/dev/null || true)
hp_saved=""
for n in /sys/devices/system/node/node*/hugepages/hugepages-2048kB/nr_hugepages; do
	[ -f "$n" ] && hp_saved="$hp_saved $n=$(cat "$n")"
done
restore() {
	for m in tmpfs huge ramfs thp; do umount "$work/mnt/$m" 2>/dev/null || true; done
	rm -rf "$work"
	[ -n "$thp_saved" ] && echo "$thp_saved" > "$thp" 2>/dev/null || true
	for kv in $hp_saved; do echo "${kv#*=}" > "${kv%%=*}" 2>/dev/null || true; done
	if [ -n "$dev_saved" ]; then
		chgrp "${dev_saved% *}" "$dev" && chmod "${dev_saved#* }" "$dev"
	fi
}
trap restore EXIT INT TERM

mkdir -p "$work/tests" "$work/mnt"
cp "$b"/tests/t_* "$work/tests/"
cp "$b/pageleap" "$work/" 2>/dev/null || true
chmod -R a+rX "$work"
# huge pages: enough on every node for t_huge's largest case (72) and t_extpool (24)
for n in /sys/devices/system/node/node*/hugepages/hugepages-2048kB/nr_hugepages; do
	[ -f "$n" ] && echo 80 > "$n"
done
[ -n "$thp_saved" ] && echo advise > "$thp"
own="uid=$uid,gid=$uid"
for m in tmpfs huge ramfs thp; do mkdir -p "$work/mnt/$m"; done
mount -t tmpfs -o "size=256m,$own" none "$work/mnt/tmpfs"
mount -t hugetlbfs -o "pagesize=2M,$own" none "$work/mnt/huge"
mount -t ramfs -o mode=0777 none "$work/mnt/ramfs"
mount -t tmpfs -o "size=64m,huge=advise,$own" none "$work/mnt/thp"

as_user() { # as_user GROUPS VAR=VALUE... : the suite as nobody with those groups
	if [ -n "$1" ]; then gopt="--groups=$1"; else gopt="--clear-groups"; fi
	shift
	# the mapping-bound and stress tests at the sanitizer runs' sizes: the same property,
	# a fraction of the time (their full size ran as root above)
	setpriv --reuid=$uid --regid=$uid "$gopt" env HOME=/ TMPDIR=/tmp LEAP_HP_PREPARED=1 \
		LEAP_EXTPOOL_DIR="$work/mnt" LEAP_VMA_MB="${LEAP_VMA_MB:-64}" \
		LEAP_VMA_ITER="${LEAP_VMA_ITER:-2000}" LEAP_STRESS_MB="${LEAP_STRESS_MB:-16}" \
		LEAP_STRESS_SECONDS="${LEAP_STRESS_SECONDS:-5}" "$@" sh "$here/run.sh" "$work/tests"
}
fail=0
if [ -n "$dev_saved" ]; then
	echo "== unprivileged (uid $uid), /dev/userfaultfd granted to its group: full protection"
	chgrp $uid "$dev" && chmod 0660 "$dev"
	as_user $uid || fail=1
	chgrp "${dev_saved% *}" "$dev" && chmod "${dev_saved#* }" "$dev"
else
	echo "== no $dev on this kernel (Linux 6.1+): no device mode to run"
fi
echo "== unprivileged (uid $uid), nothing granted, PAGELEAP_WP=user: user-mode-only protection"
as_user "" PAGELEAP_WP=user || fail=1
echo "== unprivileged (uid $uid), nothing granted, nothing opted in: refusals (t_unpriv)"
as_user "" LEAP_TESTS=t_unpriv || fail=1
exit $fail
