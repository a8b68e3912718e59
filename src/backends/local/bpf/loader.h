// What the two BPF model loaders (cilium/bpf/cb-bpf.c, calico-ebpf/bpf/cb-cebpf.c) share, with libbpf only:
// errors and usage, option parsing, bpffs pins, entering a node's network namespace, tc attach and detach,
// unload. Each loader defines loader_name and loader_usage_text; its own commands stay in its file.
#ifndef CB_LOADER_H
#define CB_LOADER_H

#include <stddef.h>
#include <stdint.h>

struct bpf_object;

#define EXIT_USAGE 2
#define BPFFS_ROOT "/sys/fs/bpf"

/** "cb-bpf": the prefix of every message and the name in hints. */
extern const char loader_name[];
/** The usage lines printed after a usage error ("usage: NAME load ...\n       NAME attach ...\n"). */
extern const char loader_usage_text[];

void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void usage(const char *why) __attribute__((noreturn));

/** Checks there is a subcommand and quiets libbpf's debug output; call first in main. */
void loader_start(int argc);
int unknown_subcommand(const char *cmd) __attribute__((noreturn));

/** One --name VALUE option: a string (str) or an integer in [min, max] (num). */
struct loader_opt {
	const char *name;
	const char **str;
	long *num;
	long min, max;
};
/** Parses argv[2..] against opts; a missing value or an unknown option is a usage error. */
void parse_options(int argc, char **argv, const struct loader_opt *opts, size_t n);
long parse_long(const char *s, long min, long max, const char *what);
void need(const void *v, const char *opt);

void pin_path(char *buf, size_t n, const char *dir, const char *name);
int open_pinned(const char *dir, const char *name);
int is_bpffs(const char *path);

/**
 * `load`: refuses a DIR that already holds a model (its `sentinel` pin exists), opens the object, lets
 * `prepare` adjust it (may be NULL), loads it and pins the named maps and programs under DIR. Returns the
 * loaded object for the loader's last steps; the caller closes it.
 */
struct bpf_object *load_and_pin(const char *obj_path, const char *dir, const char *sentinel, const char *const *maps,
				size_t nmaps, const char *const *progs, size_t nprogs,
				void (*prepare)(struct bpf_object *obj, void *ctx), void *ctx);
int object_map_fd(struct bpf_object *obj, const char *name);
int object_prog_fd(struct bpf_object *obj, const char *name);

/** Enters /run/netns/NETNS (pinned objects must be opened before) and returns IFNAME's ifindex there. */
unsigned ifindex_in_netns(const char *netns, const char *ifname);
/** clsact on the interface, `from` at tc ingress (packets from the pod), `to` at tc egress (packets to it). */
void attach_tc_pair(unsigned ifindex, const char *ifname, int from_fd, const char *from_name, int to_fd, const char *to_name);
/** `detach`: removes the interface's clsact qdisc and both programs with it. */
int detach_tc(const char *netns, const char *ifname);
/** `unload`: removes every pin in DIR, DIR, and the run's directory once its last node is gone. */
int unload_pins(const char *dir);

double now_ms(void);
/** Entries of a map, by walking its keys (key_size at most 64). */
size_t count_keys(int fd, size_t key_size);

#endif
