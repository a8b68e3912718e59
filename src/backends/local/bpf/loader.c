// The shared part of the BPF model loaders; see loader.h.
#define _GNU_SOURCE
#include "loader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", loader_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(code);
}

// The loader's commands, for the usage (set by loader_main before anything can fail).
static const struct loader_cmd *commands;
static size_t ncommands;

void usage(const char *why)
{
	fprintf(stderr, "%s: %s\n", loader_name, why);
	for (size_t i = 0; i < ncommands; i++)
		fprintf(stderr, "%s %s %s %s\n", i ? "      " : "usage:", loader_name, commands[i].name, commands[i].synopsis);
	exit(EXIT_USAGE);
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

static long parse_long(const char *s, long min, long max, const char *what)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < min || v > max) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s must be an integer in [%ld, %ld], got '%s'", what, min, max, s);
		usage(msg);
	}
	return v;
}

static void parse_options(int argc, char **argv, const struct loader_opt *opts, size_t n)
{
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i];
		if (i + 1 >= argc) {
			char msg[128];
			snprintf(msg, sizeof(msg), "option %s needs a value", k);
			usage(msg);
		}
		const char *v = argv[++i];
		size_t j = 0;
		while (j < n && strcmp(k, opts[j].name))
			j++;
		if (j == n) {
			char msg[128];
			snprintf(msg, sizeof(msg), "unknown option %s", k);
			usage(msg);
		}
		if (opts[j].str)
			*opts[j].str = v;
		else
			*opts[j].num = parse_long(v, opts[j].min, opts[j].max, k);
	}
}

void need(const void *v, const char *opt)
{
	if (!v) {
		char msg[128];
		snprintf(msg, sizeof(msg), "missing %s", opt);
		usage(msg);
	}
}

static void pin_path(char *buf, size_t n, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, n, "%s/%s", dir, name) >= n)
		die(EXIT_USAGE, "pin path too long: %s/%s", dir, name);
}

int open_pinned(const char *dir, const char *name)
{
	char p[PATH_MAX];
	pin_path(p, sizeof(p), dir, name);
	int fd = bpf_obj_get(p);
	if (fd < 0)
		die(1, "open pinned %s: %s (was '%s load --pin %s' run?)", p, strerror(errno), loader_name, dir);
	return fd;
}

static int is_bpffs(const char *path)
{
	struct statfs st;
	return statfs(path, &st) == 0 && (unsigned long)st.f_type == BPF_FS_MAGIC;
}

static void mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		die(EXIT_USAGE, "path too long: %s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			die(1, "mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		die(1, "mkdir %s: %s", tmp, strerror(errno));
}

// Like the Cilium agent: mount bpffs at /sys/fs/bpf when the system has not.
static void ensure_bpffs(const char *dir)
{
	size_t n = strlen(BPFFS_ROOT);
	if (!strncmp(dir, BPFFS_ROOT "/", n + 1) && !is_bpffs(BPFFS_ROOT)) {
		if (mount("bpffs", BPFFS_ROOT, "bpf", 0, "mode=0700"))
			die(1, "mount bpffs on %s: %s", BPFFS_ROOT, strerror(errno));
	}
	mkdir_p(dir);
	if (!is_bpffs(dir))
		die(1, "%s is not on a bpf filesystem (mount -t bpf bpffs %s)", dir, BPFFS_ROOT);
}

struct bpf_object *load_and_pin(const char *obj_path, const char *dir, const char *sentinel, const char *const *maps,
				size_t nmaps, const char *const *progs, size_t nprogs,
				void (*prepare)(struct bpf_object *obj, void *ctx), void *ctx)
{
	ensure_bpffs(dir);
	char p[PATH_MAX];
	pin_path(p, sizeof(p), dir, sentinel);
	if (access(p, F_OK) == 0)
		die(1, "%s already holds a loaded model; run '%s unload --pin %s' first", dir, loader_name, dir);
	struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
	if (!obj)
		die(1, "open %s: %s", obj_path, strerror(errno));
	if (prepare)
		prepare(obj, ctx);
	if (bpf_object__load(obj))
		die(1, "load %s: %s", obj_path, strerror(errno));
	for (size_t i = 0; i < nmaps; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(obj, maps[i]);
		if (!m)
			die(1, "%s has no map %s", obj_path, maps[i]);
		pin_path(p, sizeof(p), dir, maps[i]);
		if (bpf_map__pin(m, p))
			die(1, "pin %s: %s", p, strerror(errno));
	}
	for (size_t i = 0; i < nprogs; i++) {
		struct bpf_program *prog = bpf_object__find_program_by_name(obj, progs[i]);
		if (!prog)
			die(1, "%s has no program %s", obj_path, progs[i]);
		pin_path(p, sizeof(p), dir, progs[i]);
		if (bpf_program__pin(prog, p))
			die(1, "pin %s: %s", p, strerror(errno));
	}
	return obj;
}

int object_map_fd(struct bpf_object *obj, const char *name)
{
	return bpf_map__fd(bpf_object__find_map_by_name(obj, name));
}

int object_prog_fd(struct bpf_object *obj, const char *name)
{
	return bpf_program__fd(bpf_object__find_program_by_name(obj, name));
}

static void enter_netns(const char *name)
{
	char p[PATH_MAX];
	if (strchr(name, '/'))
		usage("--netns takes a name under /run/netns, not a path");
	snprintf(p, sizeof(p), "/run/netns/%s", name);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(1, "open %s: %s", p, strerror(errno));
	if (setns(fd, CLONE_NEWNET))
		die(1, "setns %s: %s", p, strerror(errno));
	close(fd);
}

unsigned ifindex_in_netns(const char *netns, const char *ifname)
{
	enter_netns(netns);
	unsigned ifindex = if_nametoindex(ifname);
	if (!ifindex)
		die(1, "no interface %s in netns %s", ifname, netns);
	return ifindex;
}

void attach_tc_pair(unsigned ifindex, const char *ifname, int from_fd, const char *from_name, int to_fd, const char *to_name)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = BPF_TC_INGRESS);
	int err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		die(1, "create clsact on %s: %s", ifname, strerror(-err));
	LIBBPF_OPTS(bpf_tc_opts, ing, .handle = 1, .priority = 1, .prog_fd = from_fd, .flags = BPF_TC_F_REPLACE);
	if ((err = bpf_tc_attach(&hook, &ing)))
		die(1, "attach %s to %s ingress: %s", from_name, ifname, strerror(-err));
	hook.attach_point = BPF_TC_EGRESS;
	LIBBPF_OPTS(bpf_tc_opts, egr, .handle = 1, .priority = 1, .prog_fd = to_fd, .flags = BPF_TC_F_REPLACE);
	if ((err = bpf_tc_attach(&hook, &egr)))
		die(1, "attach %s to %s egress: %s", to_name, ifname, strerror(-err));
}

// `detach`: removes the interface's clsact qdisc and both programs with it.
static int detach_tc(const char *netns, const char *ifname)
{
	need(netns, "--netns");
	need(ifname, "--ifname");
	unsigned ifindex = ifindex_in_netns(netns, ifname);
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	int err = bpf_tc_hook_destroy(&hook);
	if (err && err != -ENOENT)
		die(1, "remove clsact from %s: %s", ifname, strerror(-err));
	return 0;
}

// `unload`: removes every pin in DIR, DIR, and the run's directory once its last node is gone.
static int unload_pins(const char *dir)
{
	need(dir, "--pin");
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		die(1, "open %s: %s", dir, strerror(errno));
	}
	if (!is_bpffs(dir))
		die(1, "refusing to unload %s: not on a bpf filesystem", dir);
	struct dirent *e;
	char p[PATH_MAX];
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		pin_path(p, sizeof(p), dir, e->d_name);
		if (unlink(p))
			die(1, "unpin %s: %s", p, strerror(errno));
	}
	closedir(d);
	if (rmdir(dir))
		die(1, "rmdir %s: %s", dir, strerror(errno));
	// Per-node pin dirs live under /sys/fs/bpf/cb-<runid>/: drop the run dir once its last node is gone.
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		const char *base = strrchr(parent, '/');
		if (base && !strncmp(base + 1, "cb-", 3) && is_bpffs(parent))
			rmdir(parent); // ENOTEMPTY while other nodes remain: fine
	}
	return 0;
}

double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

size_t count_keys(int fd, size_t key_size)
{
	char cur[64], next[64];
	size_t n = 0;
	if (key_size > sizeof(cur))
		return 0;
	int more = bpf_map_get_next_key(fd, NULL, cur) == 0;
	while (more) {
		n++;
		more = bpf_map_get_next_key(fd, cur, next) == 0;
		memcpy(cur, next, key_size);
	}
	return n;
}

int loader_main(int argc, char **argv, struct loader_paths *paths, const struct loader_opt *opts, size_t nopts,
		const struct loader_cmd *cmds, size_t ncmds, void *args)
{
	commands = cmds;
	ncommands = ncmds;
	if (argc < 2)
		usage("missing subcommand");
	libbpf_set_print(libbpf_quiet);
	struct loader_opt all[16] = {
		{ .name = "--obj", .str = &paths->obj },
		{ .name = "--pin", .str = &paths->pin },
		{ .name = "--netns", .str = &paths->netns },
		{ .name = "--ifname", .str = &paths->ifname },
	};
	if (nopts > sizeof(all) / sizeof(all[0]) - 4)
		die(1, "too many options");
	memcpy(all + 4, opts, nopts * sizeof(*opts));
	parse_options(argc, argv, all, 4 + nopts);
	for (size_t i = 0; i < ncmds; i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		if (cmds[i].run)
			return cmds[i].run(args);
		if (!strcmp(argv[1], "detach"))
			return detach_tc(paths->netns, paths->ifname);
		if (!strcmp(argv[1], "unload"))
			return unload_pins(paths->pin);
	}
	char msg[128];
	snprintf(msg, sizeof(msg), "unknown subcommand '%s'", argv[1]);
	usage(msg);
}
