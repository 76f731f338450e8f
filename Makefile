# i2pmae -- plain Makefile (mpicc, C11, OpenMP, oneDNN, parallel HDF5).
#
#   make run     install missing Debian packages, build, run the demo
#   make test    install missing Debian packages, build, run every test
#   make bench   install, build, run the benchmarks (ratios against the reference); BENCH=pattern
#                runs some (BENCH=roofline rewrites the tables of docs/performance.md)
#   make all     build ./i2pmae and the unit tests only (no install step)
#   make fuzz    install clang, build the libFuzzer harnesses of tests/fuzz/ (build-fuzz/), run
#                each for FUZZ_SECONDS (default 60; FUZZ_ONLY=name runs one harness)
#   make test SAN=1   the same suite built with AddressSanitizer + UBSan (build-san/)
#
# Variables: SAN=1 (sanitizers), JOBS (parallel build jobs, default: nproc).

CC      := mpicc
SAN     ?= 0
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
BUILD   := build
ifeq ($(SAN),1)
BUILD   := build-san
endif

PKGS    := hdf5-openmpi libcjson inih libpng
# -fno-math-errno: sqrtf and friends need not set errno (nothing here reads it after a math call), so
# `omp simd` loops with sqrtf vectorise (AdamW); IEEE results are unchanged (sqrt is exactly rounded)
CFLAGS  := -std=c11 -O2 -fno-math-errno -g -Wall -Wextra -Werror -Wno-format-truncation -fopenmp -D_GNU_SOURCE -Iinclude -MMD -MP
LDLIBS  := -ldnnl -llinear -lcrypto -lm
ifeq ($(SAN),1)
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

SRCS      := $(wildcard src/*.c)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
LIB_OBJS  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
MAIN_OBJ  := $(BUILD)/obj/main.o
TEST_SRCS := $(wildcard tests/unit/test_*.c)
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
# Code shared by several unit tests (tests/unit/support_*.c): linked into every unit test.
TEST_SUPPORT := $(patsubst tests/unit/%.c,$(BUILD)/tests/%.o,$(wildcard tests/unit/support_*.c))
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
BENCH_SUPPORT := $(BUILD)/bench/support_bench.o
BIN       := $(BUILD)/i2pmae
# Fuzz harnesses (tests/fuzz/fuzz_<name>.c): replay drivers built with the ordinary compiler for
# `make test` (tests/e2e/test_fuzz_replay.sh), libFuzzer binaries built with clang by `make fuzz`.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY_BINS := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz/replay_%,$(FUZZ_SRCS))

.PHONY: all deps build run test bench soak clean demo-clean fuzz fuzz-build

all: $(BIN) $(TEST_SUPPORT) $(TEST_BINS) $(BENCH_SUPPORT) $(BENCH_BINS) $(FUZZ_REPLAY_BINS)
ifeq ($(SAN),0)
	@ln -sf $(BIN) i2pmae
endif

deps:
	@sh tests/deps.sh

# The public targets run `deps` first, then a sub-make (so pkg-config sees the installed packages).
build: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all SAN=$(SAN)

run: build
	@sh input/demo/run_demo.sh ./$(BIN)

test: build
	@I2PMAE=$(CURDIR)/$(BIN) BUILD=$(CURDIR)/$(BUILD) SAN=$(SAN) sh tests/run_all.sh

# The kill soak (tests/soak/soak.sh): SOAK_N kills each of extract, pretrain, finetune (default 20),
# moments from SOAK_SEED (default 1).
soak: build
	@I2PMAE=$(CURDIR)/$(BIN) ROOT=$(CURDIR) sh tests/soak/soak.sh

bench: build
	@I2PMAE=$(CURDIR)/$(BIN) BUILD=$(CURDIR)/$(BUILD) sh tests/bench/run_bench.sh

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj
	$(CC) $(CFLAGS) $(shell pkg-config --cflags $(PKGS)) -c $< -o $@

$(BUILD)/libi2pmae.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(BUILD)/libi2pmae.a
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(shell pkg-config --libs $(PKGS)) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(TEST_SUPPORT) $(BUILD)/libi2pmae.a | $(BUILD)/tests
	$(CC) $(CFLAGS) $(shell pkg-config --cflags $(PKGS) cmocka) $(LDFLAGS) $< $(TEST_SUPPORT) $(BUILD)/libi2pmae.a -o $@ \
	  $(shell pkg-config --libs $(PKGS) cmocka) $(LDLIBS)

$(BUILD)/tests/support_%.o: tests/unit/support_%.c | $(BUILD)/tests
	$(CC) $(CFLAGS) $(shell pkg-config --cflags $(PKGS) cmocka) -c $< -o $@

# Benchmark drivers (tests/bench/bench_*.c): linked like the unit tests, without cmocka.
$(BUILD)/bench/%: tests/bench/%.c $(BENCH_SUPPORT) $(BUILD)/libi2pmae.a | $(BUILD)/bench
	$(CC) $(CFLAGS) $(shell pkg-config --cflags $(PKGS)) $(LDFLAGS) $< $(BENCH_SUPPORT) $(BUILD)/libi2pmae.a -o $@ \
	  $(shell pkg-config --libs $(PKGS)) $(LDLIBS)

$(BUILD)/bench/support_bench.o: tests/bench/support_bench.c | $(BUILD)/bench
	$(CC) $(CFLAGS) $(shell pkg-config --cflags $(PKGS)) -c $< -o $@

$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(BUILD)/libi2pmae.a | $(BUILD)/fuzz
	$(CC) $(CFLAGS) $(shell pkg-config --cflags $(PKGS)) $(LDFLAGS) $< tests/fuzz/replay_main.c \
	  $(BUILD)/libi2pmae.a -o $@ $(shell pkg-config --libs $(PKGS)) $(LDLIBS)

# ---- make fuzz: libFuzzer (clang -fsanitize=fuzzer,address,undefined), its own build folder ----
FUZZ_SECONDS ?= 60
FUZZ_ONLY    ?=
FUZZ_DIR     := build-fuzz
FUZZ_PKGS    := clang libclang-rt-14-dev libomp-14-dev
FUZZ_CC      := OMPI_CC=clang mpicc
FUZZ_CFLAGS  := -std=c11 -O1 -g -Wall -Wextra -Werror -Wno-pass-failed -fopenmp -D_GNU_SOURCE -Iinclude \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_LIB_OBJS := $(patsubst src/%.c,$(FUZZ_DIR)/obj/%.o,$(LIB_SRCS))
FUZZ_BINS    := $(patsubst tests/fuzz/fuzz_%.c,$(FUZZ_DIR)/fuzz_%,$(FUZZ_SRCS))

fuzz:
	@sh tests/deps.sh $(FUZZ_PKGS)
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-build
	@FUZZ_BUILD=$(CURDIR)/$(FUZZ_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_ONLY=$(FUZZ_ONLY) sh tests/fuzz/run_fuzz.sh

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: src/%.c | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(shell pkg-config --cflags $(PKGS)) -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libi2pmae.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libi2pmae.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(shell pkg-config --cflags $(PKGS)) $< $(FUZZ_DIR)/libi2pmae.a \
	  -o $@ $(shell pkg-config --libs $(PKGS)) $(LDLIBS)

$(FUZZ_DIR)/obj:
	@mkdir -p $@

$(BUILD)/obj $(BUILD)/tests $(BUILD)/bench $(BUILD)/fuzz:
	@mkdir -p $@

clean:
	rm -rf build build-san build-fuzz i2pmae

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/tests/*.d $(BUILD)/bench/*.d $(FUZZ_DIR)/obj/*.d)
