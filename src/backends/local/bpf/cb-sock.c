// cb-sock: loader for the socket-level service load balancers (Cilium's socket LB model, cilium/bpf/sock_lb.bpf.c;
// Calico's connect-time LB model, calico-ebpf/bpf/ctlb.bpf.c), with libbpf only. The object decides the maps and
// programs; the caller names them, and writes map entries as raw bytes it encoded itself (TypeScript, which knows
// each struct's layout), so one loader serves both.
//
//   cb-sock load   --obj PATH --pin DIR --maps a,b --progs x,y [--sizes a=N,b=M]
//                  load the object, set map sizes, pin the named maps and programs under DIR
//   cb-sock attach --pin DIR --cgroup PATH --attach prog:hook[,prog:hook]   hook: connect4 sendmsg4 recvmsg4 getpeername4
//                  attach pinned programs to the cgroup v2 directory PATH (BPF_F_ALLOW_MULTI), and to nothing else
//   cb-sock detach-cgroup --pin DIR --cgroup PATH --attach prog:hook[,…]
//   cb-sock write  --pin DIR    apply stdin lines in order: "MAP + KEYHEX VALHEX" (add or replace) or "MAP - KEYHEX"
//                  (delete; a missing key is fine); consecutive adds to one map go in one batch update.
//                  Prints {"added":N,"deleted":M,"ms":T}
//   cb-sock count  --pin DIR --maps a,b        entries per map as JSON
//   cb-sock counters --pin DIR --maps NAME     a per-CPU u64 array summed over CPUs, as a JSON array
//   cb-sock unload --pin DIR
//
// Exit codes: 0 ok, 1 failure, 2 usage or input error, 3 a map is full (stderr: {"error":"map-full","map":NAME}).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "loader.h"

#define EXIT_FULL 3
#define MAX_NAMES 16

const char loader_name[] = "cb-sock";

struct args {
	struct loader_paths p; // first: loader_main reads it
	const char *maps, *progs, *sizes, *cgroup, *attach;
};

// Splits a comma list into at most MAX_NAMES names (the string is modified).
static size_t split(char *s, char **out)
{
	size_t n = 0;
	for (char *tok = strtok(s, ","); tok && n < MAX_NAMES; tok = strtok(NULL, ","))
		out[n++] = tok;
	return n;
}

static void set_sizes(struct bpf_object *obj, void *ctx)
{
	struct args *a = ctx;
	if (!a->sizes)
		return;
	char *buf = strdup(a->sizes), *items[MAX_NAMES];
	size_t n = split(buf, items);
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(items[i], '=');
		if (!eq)
			usage("--sizes takes map=N,map=N");
		*eq = '\0';
		char *end;
		long v = strtol(eq + 1, &end, 10);
		if (*end || v < 1 || v > (1L << 24))
			usage("--sizes: each size must be an integer in [1, 16777216]");
		struct bpf_map *m = bpf_object__find_map_by_name(obj, items[i]);
		if (!m)
			die(EXIT_USAGE, "%s has no map %s", a->p.obj, items[i]);
		if (bpf_map__set_max_entries(m, (uint32_t)v))
			die(1, "set size of %s: %s", items[i], strerror(errno));
	}
	free(buf);
}

static int cmd_load(void *arg)
{
	struct args *a = arg;
	need(a->p.obj, "--obj");
	need(a->p.pin, "--pin");
	need(a->maps, "--maps");
	need(a->progs, "--progs");
	char *mbuf = strdup(a->maps), *pbuf = strdup(a->progs), *maps[MAX_NAMES], *progs[MAX_NAMES];
	size_t nm = split(mbuf, maps), np = split(pbuf, progs);
	double t0 = now_ms();
	struct bpf_object *obj = load_and_pin(a->p.obj, a->p.pin, maps[0], (const char *const *)maps, nm, (const char *const *)progs, np, set_sizes, a);
	bpf_object__close(obj);
	printf("{\"pin\":\"%s\",\"ms\":%.3f}\n", a->p.pin, now_ms() - t0);
	return 0;
}

static enum bpf_attach_type hook_type(const char *hook)
{
	if (!strcmp(hook, "connect4"))
		return BPF_CGROUP_INET4_CONNECT;
	if (!strcmp(hook, "sendmsg4"))
		return BPF_CGROUP_UDP4_SENDMSG;
	if (!strcmp(hook, "recvmsg4"))
		return BPF_CGROUP_UDP4_RECVMSG;
	if (!strcmp(hook, "getpeername4"))
		return BPF_CGROUP_INET4_GETPEERNAME;
	die(EXIT_USAGE, "unknown hook '%s' (connect4, sendmsg4, recvmsg4, getpeername4)", hook);
}

static int cgroup_attach(void *arg, int detach)
{
	struct args *a = arg;
	need(a->p.pin, "--pin");
	need(a->cgroup, "--cgroup");
	need(a->attach, "--attach");
	int cg = open(a->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		die(1, "open cgroup %s: %s", a->cgroup, strerror(errno));
	char *buf = strdup(a->attach), *items[MAX_NAMES];
	size_t n = split(buf, items);
	for (size_t i = 0; i < n; i++) {
		char *colon = strchr(items[i], ':');
		if (!colon)
			usage("--attach takes prog:hook,prog:hook");
		*colon = '\0';
		int fd = open_pinned(a->p.pin, items[i]);
		enum bpf_attach_type t = hook_type(colon + 1);
		if (detach) {
			if (bpf_prog_detach2(fd, cg, t) && errno != ENOENT)
				die(1, "detach %s (%s) from %s: %s", items[i], colon + 1, a->cgroup, strerror(errno));
		} else if (bpf_prog_attach(fd, cg, t, BPF_F_ALLOW_MULTI)) {
			die(1, "attach %s to %s of %s: %s", items[i], colon + 1, a->cgroup, strerror(errno));
		}
		close(fd);
	}
	free(buf);
	close(cg);
	printf("{\"cgroup\":\"%s\",\"%s\":%zu}\n", a->cgroup, detach ? "detached" : "attached", n);
	return 0;
}

static int cmd_attach(void *arg) { return cgroup_attach(arg, 0); }
static int cmd_detach_cgroup(void *arg) { return cgroup_attach(arg, 1); }

// ---- write ----

struct pinned_map {
	char name[64];
	int fd;
	uint32_t key_size, value_size, type;
};

static struct pinned_map *map_of(const char *dir, const char *name, struct pinned_map *cache, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(cache[i].name, name))
			return &cache[i];
	if (*n == MAX_NAMES)
		die(EXIT_USAGE, "more than %d maps", MAX_NAMES);
	struct pinned_map *m = &cache[(*n)++];
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->fd = open_pinned(dir, name);
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	if (bpf_obj_get_info_by_fd(m->fd, &info, &len))
		die(1, "map info of %s: %s", name, strerror(errno));
	m->key_size = info.key_size;
	m->value_size = info.value_size;
	m->type = info.type;
	return m;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void parse_hex(const char *s, uint8_t *out, size_t n, long line)
{
	if (strlen(s) != 2 * n) {
		fprintf(stderr, "cb-sock: stdin line %ld: expected %zu bytes of hex, got '%s'\n", line, n, s);
		exit(EXIT_USAGE);
	}
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			fprintf(stderr, "cb-sock: stdin line %ld: not lowercase hex: '%s'\n", line, s);
			exit(EXIT_USAGE);
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
}

struct batch {
	struct pinned_map *map;
	uint8_t *keys, *values;
	size_t n, cap;
};

static void full(const struct pinned_map *m)
{
	fprintf(stderr, "{\"error\":\"map-full\",\"map\":\"%s\"}\n", m->name);
	exit(EXIT_FULL);
}

static void flush_batch(struct batch *b, size_t *added)
{
	if (!b->n)
		return;
	struct pinned_map *m = b->map;
	uint32_t count = (uint32_t)b->n;
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	if (m->type == BPF_MAP_TYPE_LPM_TRIE || bpf_map_update_batch(m->fd, b->keys, b->values, &count, &opts)) {
		if (m->type != BPF_MAP_TYPE_LPM_TRIE && (errno == ENOSPC || errno == E2BIG))
			full(m);
		// No batch op for this map type (LPM tries), or a partial batch: per-element BPF_ANY is idempotent.
		for (size_t i = 0; i < b->n; i++) {
			if (bpf_map_update_elem(m->fd, b->keys + i * m->key_size, b->values + i * m->value_size, BPF_ANY)) {
				if (errno == ENOSPC || errno == E2BIG || errno == ENOMEM)
					full(m);
				die(1, "update %s: %s", m->name, strerror(errno));
			}
		}
	}
	*added += b->n;
	b->n = 0;
}

static int cmd_write(void *arg)
{
	struct args *a = arg;
	need(a->p.pin, "--pin");
	struct pinned_map cache[MAX_NAMES];
	size_t ncache = 0, added = 0, deleted = 0;
	struct batch b = { 0 };
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0;
	double t0 = now_ms();
	while (getline(&line, &cap, stdin) > 0) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (!*line)
			continue;
		char *name = strtok(line, " "), *op = strtok(NULL, " "), *key = strtok(NULL, " "), *val = strtok(NULL, " ");
		if (!name || !op || !key || (op[0] == '+' && !val) || (op[0] != '+' && op[0] != '-')) {
			fprintf(stderr, "cb-sock: stdin line %ld: expected 'MAP + KEYHEX VALHEX' or 'MAP - KEYHEX'\n", lineno);
			return EXIT_USAGE;
		}
		struct pinned_map *m = map_of(a->p.pin, name, cache, &ncache);
		if (b.map != m || op[0] == '-')
			flush_batch(&b, &added);
		if (op[0] == '-') {
			uint8_t k[256];
			if (m->key_size > sizeof(k))
				die(1, "key of %s too large", name);
			parse_hex(key, k, m->key_size, lineno);
			if (bpf_map_delete_elem(m->fd, k) == 0)
				deleted++;
			else if (errno != ENOENT)
				die(1, "delete from %s: %s", name, strerror(errno));
			continue;
		}
		if (b.map != m) {
			free(b.keys);
			free(b.values);
			b = (struct batch){ .map = m };
		}
		if (b.n == b.cap) {
			b.cap = b.cap ? b.cap * 2 : 1024;
			b.keys = realloc(b.keys, b.cap * m->key_size);
			b.values = realloc(b.values, b.cap * m->value_size);
			if (!b.keys || !b.values)
				die(1, "out of memory");
		}
		parse_hex(key, b.keys + b.n * m->key_size, m->key_size, lineno);
		parse_hex(val, b.values + b.n * m->value_size, m->value_size, lineno);
		b.n++;
	}
	flush_batch(&b, &added);
	printf("{\"added\":%zu,\"deleted\":%zu,\"ms\":%.3f}\n", added, deleted, now_ms() - t0);
	return 0;
}

static int cmd_count(void *arg)
{
	struct args *a = arg;
	need(a->p.pin, "--pin");
	need(a->maps, "--maps");
	char *buf = strdup(a->maps), *names[MAX_NAMES];
	size_t n = split(buf, names);
	struct pinned_map cache[MAX_NAMES];
	size_t ncache = 0;
	printf("{");
	for (size_t i = 0; i < n; i++) {
		struct pinned_map *m = map_of(a->p.pin, names[i], cache, &ncache);
		printf("%s\"%s\":%zu", i ? "," : "", names[i], count_keys(m->fd, m->key_size));
	}
	printf("}\n");
	return 0;
}

static int cmd_counters(void *arg)
{
	struct args *a = arg;
	need(a->p.pin, "--pin");
	need(a->maps, "--maps");
	struct pinned_map cache[MAX_NAMES];
	size_t ncache = 0;
	struct pinned_map *m = map_of(a->p.pin, a->maps, cache, &ncache);
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu < 1 || m->value_size != 8)
		die(1, "%s is not a per-CPU u64 array", a->maps);
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	bpf_obj_get_info_by_fd(m->fd, &info, &len);
	uint64_t *vals = calloc((size_t)ncpu, sizeof(uint64_t));
	printf("[");
	for (uint32_t k = 0; k < info.max_entries; k++) {
		uint64_t sum = 0;
		if (bpf_map_lookup_elem(m->fd, &k, vals) == 0)
			for (int c = 0; c < ncpu; c++)
				sum += vals[c];
		printf("%s%llu", k ? "," : "", (unsigned long long)sum);
	}
	printf("]\n");
	free(vals);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct loader_cmd cmds[] = {
		{ "load", "--obj PATH --pin DIR --maps a,b --progs x,y [--sizes a=N]", cmd_load },
		{ "attach", "--pin DIR --cgroup PATH --attach prog:hook[,prog:hook]", cmd_attach },
		{ "detach-cgroup", "--pin DIR --cgroup PATH --attach prog:hook[,prog:hook]", cmd_detach_cgroup },
		{ "write", "--pin DIR  < lines 'MAP + KEYHEX VALHEX' | 'MAP - KEYHEX'", cmd_write },
		{ "count", "--pin DIR --maps a,b", cmd_count },
		{ "counters", "--pin DIR --maps NAME", cmd_counters },
		{ "unload", "--pin DIR", NULL },
	};
	struct args a = { 0 };
	const struct loader_opt opts[] = {
		{ .name = "--maps", .str = &a.maps },
		{ .name = "--progs", .str = &a.progs },
		{ .name = "--sizes", .str = &a.sizes },
		{ .name = "--cgroup", .str = &a.cgroup },
		{ .name = "--attach", .str = &a.attach },
	};
	return loader_main(argc, argv, &a.p, opts, sizeof(opts) / sizeof(opts[0]), cmds, sizeof(cmds) / sizeof(cmds[0]), &a);
}
