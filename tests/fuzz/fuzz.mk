# Fuzzing (docs/fuzz.md), included by the Makefile.
#   make fuzz        both harnesses, FUZZ_SECONDS each (default 3600), corpus grown in
#                    build-fuzz/corpus/, then coverage of src/ (llvm-cov) printed
#   make fuzz-ci     2 minutes in all from tests/fuzz/corpus/: fails on any finding
#   make fuzz-build  the harnesses only (build-fuzz/fuzz_api, build-fuzz/fuzz_cli)
# The library and the CLI are compiled again with clang, ASan+UBSan and libFuzzer's
# coverage instrumentation into their own folder, FB (default build-fuzz).
FB ?= build-fuzz
FUZZ_SECONDS ?= 3600
FUZZ_CC ?= clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_COV := -fprofile-instr-generate -fcoverage-mapping
FUZZ_LIB_OBJ := $(LIB_SRC:src/%.c=$(FB)/obj/%.o)
FUZZ_COV_OBJ := $(LIB_SRC:src/%.c=$(FB)/cov/%.o)

$(FB)/obj/%.o: src/%.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASEFLAGS) $(LIBFLAGS) $(FUZZ_CFLAGS) -c $< -o $@
$(FB)/cov/%.o: src/%.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASEFLAGS) $(LIBFLAGS) -O1 -g $(FUZZ_COV) -c $< -o $@

# the API harness, and the same program with source coverage (fed the corpus afterwards)
$(FB)/fuzz_api: tests/fuzz/fuzz_api.c include/pageleap.h $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(BASEFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIB_OBJ) -o $@ $(LIBS)
$(FB)/fuzz_api_cov: tests/fuzz/fuzz_api.c tests/fuzz/standalone.c include/pageleap.h $(FUZZ_COV_OBJ)
	$(FUZZ_CC) $(BASEFLAGS) -O1 -g $(FUZZ_COV) tests/fuzz/fuzz_api.c tests/fuzz/standalone.c \
		$(FUZZ_COV_OBJ) -o $@ $(LIBS)
# the CLI under ASan+UBSan, and the harness that runs it (a child per input)
# (the harness itself is not instrumented: it reads the coverage section's bounds, and
# a file that declares them must not add counters of its own)
$(FB)/fuzz_cli.o: tests/fuzz/fuzz_cli.c
	@mkdir -p $(FB)
	$(FUZZ_CC) $(BASEFLAGS) -O1 -g $(FUZZ_SAN) -c $< -o $@
$(FB)/fuzz_cli: $(FB)/fuzz_cli.o $(CLI_SRC) $(wildcard tools/*.h) include/pageleap.h $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(BASEFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Dmain=pageleap_main \
		$(FB)/fuzz_cli.o $(CLI_SRC) $(FUZZ_LIB_OBJ) -o $@ $(LIBS)

fuzz-build: $(FB)/fuzz_api $(FB)/fuzz_cli

FUZZ_RUN = sh tests/fuzz/run.sh
fuzz: fuzz-build $(FB)/fuzz_api_cov
	$(FUZZ_RUN) $(FB) $(FUZZ_SECONDS)
fuzz-ci: fuzz-build
	$(FUZZ_RUN) --ci $(FB) 60
.PHONY: fuzz fuzz-ci fuzz-build
