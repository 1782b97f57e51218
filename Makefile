# pageleap - GNU make build.
#   make                 library (shared + static), CLI, tests
#   make check           local tests, then the emulated-NUMA guests (2 nodes, 4 nodes, memory-only node)
#   make check-local     local tests only;  make check-vm  guests only
#   make check-unpriv    the local tests as user nobody, in each write-protection mode
#                        (make check and check-local run it after the tests as root)
#   make check-fio       the real fio, its buffers in a migrating region, for minutes
#                        (tests/fio.sh --long; make check and check-local run it short)
#   make asan / tsan     the tests under ASan+UBSan / TSan
#   make bench           the main job: pageleap bench --quick here and in a 2-node guest
#                        (make bench-full: the full run, 2- and 4-node guests)
#   make ycsb            YCSB A, C, E on a B+-tree while it migrates, per method, here and
#                        in a 2-node guest (timelines in build/ycsb/)
#   make demo            a region migrating across nodes, locally and in emulated guests
#   make measure         this machine measured from inside next to what sysfs says, and
#                        whether it hides NUMA (pageleap topo --measure; build/measure/);
#                        make measure-vm: the same in the emulated guests
#   make layout          the call graph between the library's files (checked by every build)
#   make install PREFIX=/usr/local
# Out of tree: make B=/path/to/builddir

VERSION := 0.4.0
SOVER := 0
B ?= build
CC ?= cc
PREFIX ?= /usr/local
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
BASEFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) -pthread
# the library's sources see the folders' internal headers; tools and tests see pageleap.h
LIBFLAGS := -Isrc
LIBS := -lnuma -pthread -lm

LIB_SRC := $(wildcard src/*/*.c)
LIB_HDR := $(wildcard src/*/*.h) include/pageleap.h
LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/obj/%.o)
PIC_OBJ := $(LIB_SRC:src/%.c=$(B)/pic/%.o)
TEST_SRC := $(wildcard tests/t_*.c)
TESTS := $(TEST_SRC:tests/%.c=$(B)/tests/%)
STATIC_TESTS := $(TEST_SRC:tests/%.c=$(B)/static/%)

SHLIB := $(B)/libpageleap.so.$(VERSION)
STLIB := $(B)/libpageleap.a
CLI := $(B)/pageleap

all: $(SHLIB) $(STLIB) $(CLI) $(TESTS) $(B)/tests/cxx_header $(B)/tests/fio_shim.so $(B)/pageleap.pc \
	$(B)/abi-symbols.ok $(B)/layout.ok

$(B)/obj/%.o: src/%.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(LIBFLAGS) $(CFLAGS) -fvisibility=hidden -c $< -o $@
$(B)/pic/%.o: src/%.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(LIBFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(SHLIB): $(PIC_OBJ) src/libpageleap.map
	$(CC) $(CFLAGS) -shared -Wl,-soname,libpageleap.so.$(SOVER) -Wl,--version-script=src/libpageleap.map \
		-o $@ $(PIC_OBJ) $(LIBS)
	ln -sf libpageleap.so.$(VERSION) $(B)/libpageleap.so.$(SOVER)
	ln -sf libpageleap.so.$(SOVER) $(B)/libpageleap.so
$(STLIB): $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
# the symbol map lists every LEAP_API function of src/ by name, and the library exports
# exactly those (a build-time check like cxx_header: the guests' tests have no src/)
$(B)/abi-symbols.ok: tests/abi_symbols.sh src/libpageleap.map $(SHLIB) $(LIB_SRC)
	sh tests/abi_symbols.sh src/libpageleap.map $(SHLIB) $(LIB_SRC)
	touch $@

# the architecture: no circle of calls between files or folders, folders layered, one
# header per folder, raw system calls only in src/os (from the objects' symbols)
$(B)/layout.ok: tests/layout.sh $(LIB_OBJ) $(LIB_SRC) $(LIB_HDR)
	sh tests/layout.sh $(LIB_OBJ)
	touch $@
layout: $(LIB_OBJ)
	sh tests/layout.sh -v $(LIB_OBJ)

CLI_SRC := $(wildcard tools/*.c)
# the CLI sees pageleap.h only, like any program built on the library
$(CLI): $(CLI_SRC) $(wildcard tools/*.h) include/pageleap.h $(STLIB) | $(B)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(CLI_SRC) -o $@ $(STLIB) $(LIBS) -lm

$(B)/tests/%: tests/%.c $(wildcard tests/*.h) $(STLIB) | $(B)/tests
	$(CC) $(BASEFLAGS) $(CFLAGS) $< $(TEST_EXTRA) -o $@ $(TEST_LDFLAGS) $(STLIB) $(LIBS)
# failure injection: the library's mmap calls go through the test's __wrap_mmap
$(B)/tests/t_inject $(B)/static/t_inject: TEST_LDFLAGS = -Wl,--wrap=mmap
# systematic failure injection: every libc entry point the library reaches (docs/inject.md)
FAILINJ_WRAP := malloc calloc realloc aligned_alloc mmap munmap madvise fallocate ftruncate \
	memfd_create ioctl syscall mbind set_mempolicy pthread_create open fopen pipe2 poll \
	numa_allocate_cpumask numa_node_to_cpus numa_node_of_cpu numa_distance numa_node_size64
$(B)/tests/t_failinj $(B)/static/t_failinj: TEST_LDFLAGS = $(FAILINJ_WRAP:%=-Wl,--wrap=%)
# io_uring (liburing) drives the device I/O test, and t_unpriv's kernel-mode writes
$(B)/tests/t_dio $(B)/static/t_dio $(B)/tests/t_unpriv $(B)/static/t_unpriv: TEST_LDFLAGS = -luring
# unit tests of the library's pure pieces see its internal headers
UNIT_TESTS := t_gran t_ivset t_hist t_runs t_cluster t_measure
$(UNIT_TESTS:%=$(B)/tests/%) $(UNIT_TESTS:%=$(B)/static/%): TEST_EXTRA = -Isrc
# the B+-tree of pageleap ycsb is tested on its own
$(B)/tests/t_btree $(B)/static/t_btree: tools/btree.c tools/btree.h
$(B)/tests/t_btree $(B)/static/t_btree: TEST_EXTRA = -Itools tools/btree.c
# the public header must compile as C++ too
$(B)/tests/cxx_header: tests/cxx_header.cc include/pageleap.h $(STLIB) | $(B)/tests
	$(CXX) -std=c++11 -Iinclude -Wall -Wextra -Werror -pedantic $(CFLAGS) $< -o $@ $(STLIB) $(LIBS)

# the LD_PRELOAD shim of tests/fio.sh: fio's I/O buffers in a migrating region. A preloaded
# object must be position-independent, so it links the shared library's objects in (and
# needs no libpageleap.so at run time).
$(B)/tests/fio_shim.so: tests/fio_shim.c include/pageleap.h $(PIC_OBJ) | $(B)/tests
	$(CC) $(BASEFLAGS) $(CFLAGS) -fPIC -shared $< $(PIC_OBJ) -o $@ -ldl $(LIBS)

# static binaries for the initramfs of the emulated-NUMA guests
$(B)/static/%: tests/%.c $(wildcard tests/*.h) $(STLIB) | $(B)/static
	$(CC) $(BASEFLAGS) $(CFLAGS) -static $< $(TEST_EXTRA) -o $@ $(TEST_LDFLAGS) $(STLIB) -lnuma -pthread -lm
$(B)/static/pageleap: $(CLI_SRC) $(wildcard tools/*.h) include/pageleap.h $(STLIB) | $(B)/static
	$(CC) $(BASEFLAGS) $(CFLAGS) -static $(CLI_SRC) -o $@ $(STLIB) -lnuma -pthread -lm
$(B)/static/guest-exit: scripts/vm/guest-exit.c | $(B)/static
	$(CC) -O2 -static $< -o $@
static: $(STATIC_TESTS) $(B)/static/pageleap $(B)/static/guest-exit

$(B)/pageleap.pc: pageleap.pc.in | $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

$(B) $(B)/obj $(B)/pic $(B)/tests $(B)/static:
	mkdir -p $@

deps:
	bash scripts/deps.sh

# tests/fio.sh: the real fio on a migrating region (short here; make check-fio: minutes).
# Exit 77 is its skip (no userfaultfd write protection for this user).
FIO_SHORT = bash tests/fio.sh $(B) || [ $$? -eq 77 ]

check: deps
	$(MAKE) all static
	bash tests/run.sh $(B)/tests
	$(FIO_SHORT)
	bash tests/unpriv.sh $(B)
	bash scripts/vm/check.sh $(B)

check-local: all
	bash tests/run.sh $(B)/tests
	$(FIO_SHORT)
	bash tests/unpriv.sh $(B)

# the tests as user nobody, in each write-protection mode (root prepares, then drops)
check-unpriv: all
	bash tests/unpriv.sh $(B)

check-fio: deps
	$(MAKE) all
	bash tests/fio.sh --long $(B)

check-vm: deps
	$(MAKE) static $(B)/tests/fio_shim.so
	bash scripts/vm/check.sh $(B)

asan:
	$(MAKE) B=build-asan CC=clang CXX=clang++ CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" all
	ASAN_OPTIONS=detect_leaks=1 bash tests/run.sh build-asan/tests
tsan:
	$(MAKE) B=build-tsan CC=clang CXX=clang++ CFLAGS="-O1 -g -fsanitize=thread" all
	TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" bash tests/run.sh build-tsan/tests

demo: deps
	$(MAKE) all static
	bash scripts/demo.sh $(B)

bench: deps
	$(MAKE) all static
	bash scripts/bench.sh $(B) --quick

bench-full: deps
	$(MAKE) all static
	LEAP_BENCH_GUESTS="2node 4node" bash scripts/bench.sh $(B) --full

ycsb: deps
	$(MAKE) all static
	bash scripts/ycsb.sh $(B)

# here, as the machine is; measure-vm: in the 2-node, 4-node and memory-only guests
# (their memory latency is emulated, uniform: the verdict there must say so)
measure: $(CLI)
	PAGELEAP=$(CLI) bash scripts/measure.sh $(B)/measure
measure-vm: deps
	$(MAKE) static
	for t in 2node 4node memonly; do bash scripts/vm/run.sh $(B) $$t measure || exit 1; done

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 644 include/pageleap.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libpageleap.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libpageleap.so.$(SOVER)
	ln -sf libpageleap.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libpageleap.so
	install -m 644 $(STLIB) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' pageleap.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/pageleap.pc
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	install -m 644 man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/

clean:
	rm -rf $(B) build-asan build-tsan

.PHONY: all layout static deps check check-local check-unpriv check-fio check-vm asan tsan demo bench bench-full ycsb measure measure-vm install clean
.SECONDARY:

# the soak (not in make check): t_stress for SOAK_SECONDS (600) and at least SOAK_WRITES
# (1e9) writes, every count exact at the end, the region moving back and forth throughout
# (docs/load.md has a result)
SOAK_SECONDS ?= 600
SOAK_WRITES ?= 1000000000
soak: $(B)/tests/t_stress
	LEAP_STRESS_SECONDS=$(SOAK_SECONDS) LEAP_STRESS_MIN_WRITES=$(SOAK_WRITES) $(B)/tests/t_stress
.PHONY: soak
# fuzzing: make fuzz / fuzz-ci / fuzz-build (docs/fuzz.md)
include tests/fuzz/fuzz.mk
