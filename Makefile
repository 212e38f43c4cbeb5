# SPDX-License-Identifier: MIT
# The two commands: `make run` and `make test`. Both install what is
# missing (Debian packages, through scripts/bootstrap) and build first.

BUILD ?= build
CONF ?= etc/mxguard.conf
MESON_OPTS ?=

.PHONY: all bootstrap build run test unit integration asan fuzz bench format clean

all: build

bootstrap:
	@./scripts/bootstrap

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: bootstrap $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	install -d -m 0755 /var/lib/mxguard
	rm -rf /var/lib/mxguard/rules && cp -r rules /var/lib/mxguard/rules
	exec $(BUILD)/mxguardd -c $(CONF)

test: build
	./tests/run $(BUILD)

# Same tests on a build with AddressSanitizer and UndefinedBehaviorSanitizer.
asan: bootstrap
	[ -f build-asan/build.ninja ] || CC=clang meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ./tests/run build-asan

fuzz: bootstrap
	[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-fuzz
	./tests/fuzz/run build-fuzz $${FUZZ_SECONDS:-300}

bench: build
	./bench/run $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
