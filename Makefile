# SPDX-License-Identifier: GPL-2.0-or-later
#
# Everything builds into $(OUTPUT). "make V=1" prints the commands.

OUTPUT ?= build
PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?= /etc
DATADIR ?= /usr/share
SYSTEMDUNITDIR ?= /etc/systemd/system

CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
VMLINUX_H ?=

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' \
	-e 's/riscv64/riscv/' -e 's/s390x/s390/' -e 's/loongarch64/loongarch/')

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

LIBS_PC := libbpf json-c inih libmaxminddb libcrypto libmicrohttpd
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wformat=2 -Wshadow -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
	-I$(OUTPUT) -I. $(shell $(PKG_CONFIG) --cflags $(LIBS_PC))
LDLIBS += $(shell $(PKG_CONFIG) --libs $(LIBS_PC)) -lelf -lz -lpthread
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I$(OUTPUT) -I. -mcpu=v3

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKEL := $(OUTPUT)/borderflow.skel.h
MAPS_H := $(wildcard maps/*.h)
BPF_H := $(wildcard bpf/*.h)

LIB_SRCS := $(wildcard user/lib/*.c)
LIB_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(LIB_SRCS))
LIB_H := $(wildcard user/lib/*.h)
LIB := $(OUTPUT)/libborderflow.a

DAEMON_SRCS := $(wildcard user/*.c)
DAEMON_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(DAEMON_SRCS))
DAEMON_H := $(wildcard user/*.h)
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_OBJS := $(patsubst %.c,$(OUTPUT)/%.o,$(TOOL_SRCS))
TOOL_H := $(wildcard tools/*.h)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
UNIT_H := $(wildcard tests/unit/*.h)
# The lookup program of the geolocation benchmark, which the unit tests also run.
GEO_LOOKUP_SKEL := $(OUTPUT)/tests/geo_lookup.skel.h
LAB_SRCS := $(wildcard tests/lab/*.c)
LAB_BINS := $(patsubst tests/lab/%.c,$(OUTPUT)/tests/lab/%,$(LAB_SRCS))

# libFuzzer targets of the geolocation parsers, run by tests/lab/fuzz.t.sh. They need clang's
# libFuzzer runtime (Debian package libclang-rt-dev); "make tests" builds them when it is
# installed, and "make fuzz" builds them or fails.
FUZZ_CC ?= clang
FUZZ_RUNTIME := $(wildcard $(shell $(FUZZ_CC) -print-file-name=libclang_rt.fuzzer-$(shell \
	uname -m).a 2>/dev/null))
FUZZ_SANITIZE := address,undefined
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all -std=gnu11 \
	-D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -I. \
	$(shell $(PKG_CONFIG) --cflags libmaxminddb libcrypto)
FUZZ_LDLIBS := $(shell $(PKG_CONFIG) --libs libmaxminddb libcrypto)
# The geolocation part of the library, in an archive so that a target links only what it calls.
# user/lib/geomap.c writes the kernel's tables, which the fuzz targets do not reach.
FUZZ_LIB_SRCS := $(filter-out user/lib/geomap.c,$(wildcard user/lib/geo*.c)) user/lib/error.c
FUZZ_LIB_OBJS := $(patsubst %.c,$(OUTPUT)/fuzz/obj/%.o,$(FUZZ_LIB_SRCS))
FUZZ_LIB := $(OUTPUT)/fuzz/libgeo-fuzz.a
FUZZ_HARNESS := $(OUTPUT)/fuzz/obj/tests/fuzz/harness.o
FUZZ_SRCS := $(wildcard tests/fuzz/geo_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUTPUT)/fuzz/%,$(FUZZ_SRCS))

.PHONY: all tests test bench fuzz install uninstall clean
.DELETE_ON_ERROR:

all: $(OUTPUT)/borderflowd $(OUTPUT)/borderflow

tests: all $(UNIT_BINS) $(LAB_BINS) $(if $(FUZZ_RUNTIME),$(FUZZ_BINS))

fuzz: $(FUZZ_BINS)

test: tests
	$(Q)OUTPUT=$(OUTPUT) tests/run.sh

bench: tests
	$(Q)OUTPUT=$(OUTPUT) tests/bench/run.sh

$(OUTPUT)/vmlinux.h:
	@mkdir -p $(@D)
ifeq ($(VMLINUX_H),)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@
else
	$(call msg,CP,$@)
	$(Q)cp $(VMLINUX_H) $@
endif

$(OUTPUT)/bpf/%.bpf.o: bpf/%.bpf.c $(OUTPUT)/vmlinux.h $(MAPS_H) $(BPF_H)
	@mkdir -p $(@D)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The programs of every hook family link into one object, so one skeleton
# owns all maps and the programs share them without fd passing.
$(OUTPUT)/borderflow.bpf.o: $(BPF_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(SKEL): $(OUTPUT)/borderflow.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name borderflow_bpf > $@

$(OUTPUT)/user/lib/%.o: user/lib/%.c $(LIB_H) $(MAPS_H)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUTPUT)/user/%.o: user/%.c $(SKEL) $(DAEMON_H) $(LIB_H) $(MAPS_H)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUTPUT)/tools/%.o: tools/%.c $(TOOL_H) $(LIB_H) $(MAPS_H)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUTPUT)/borderflowd: $(DAEMON_OBJS) $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUTPUT)/borderflow: $(TOOL_OBJS) $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUTPUT)/tests/geo_lookup.bpf.o: tests/bench/geo_lookup.bpf.c tests/bench/geo_lookup.h \
		$(OUTPUT)/vmlinux.h $(MAPS_H) $(BPF_H)
	@mkdir -p $(@D)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(GEO_LOOKUP_SKEL): $(OUTPUT)/tests/geo_lookup.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name geo_lookup_bpf > $@

$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(LIB) $(LIB_H) $(MAPS_H) $(SKEL) $(GEO_LOOKUP_SKEL) \
		$(UNIT_H)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) -o $@ $< $(LIB) \
		$(LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka)

$(OUTPUT)/tests/lab/%: tests/lab/%.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $<

# The library is compiled again with coverage instrumentation and the sanitizers.
$(OUTPUT)/fuzz/obj/%.o: %.c $(LIB_H) $(MAPS_H) tests/fuzz/harness.h
	@mkdir -p $(@D)
	$(call msg,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SANITIZE) -c $< -o $@

.SECONDARY: $(FUZZ_HARNESS)

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUTPUT)/fuzz/%: tests/fuzz/%.c $(FUZZ_HARNESS) $(FUZZ_LIB) tests/fuzz/harness.h $(LIB_H) \
		$(MAPS_H)
	@mkdir -p $(@D)
	$(call msg,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SANITIZE) -o $@ $< \
		$(FUZZ_HARNESS) $(FUZZ_LIB) $(FUZZ_LDLIBS)

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(OUTPUT)/borderflowd $(DESTDIR)$(PREFIX)/sbin/borderflowd
	install -m 0755 $(OUTPUT)/borderflow $(DESTDIR)$(PREFIX)/bin/borderflow
	install -d $(DESTDIR)$(SYSCONFDIR)/borderflow
	@if test -e $(DESTDIR)$(SYSCONFDIR)/borderflow/borderflow.conf; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/borderflow/borderflow.conf; the current default is packaging/borderflow.conf"; \
	else \
		install -m 0640 packaging/borderflow.conf $(DESTDIR)$(SYSCONFDIR)/borderflow/borderflow.conf; \
	fi
	install -d -m 0750 $(DESTDIR)/var/lib/borderflow $(DESTDIR)/var/log/borderflow
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0644 packaging/borderflowd.service $(DESTDIR)$(SYSTEMDUNITDIR)/borderflowd.service
	install -d $(DESTDIR)$(PREFIX)/share/doc/borderflow
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/borderflow/README.md

# Removes what install added except the configuration, logs, alerts and the
# pinned counters in /sys/fs/bpf/borderflow: those are the operator's data.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/borderflowd $(DESTDIR)$(PREFIX)/bin/borderflow
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/borderflowd.service
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/borderflow

clean:
	rm -rf $(OUTPUT)
