// What the two BPF model loaders (cilium/bpf/cb-bpf.c, calico-ebpf/bpf/cb-cebpf.c) share, with libbpf only:
// main (subcommand table, option parsing, usage), errors, bpffs pins and loading, entering a node's network
// namespace, tc attach, and the `detach` and `unload` subcommands. Each loader defines loader_name and passes
// its commands and own options to loader_main; what its commands do stays in its file.
#ifndef CB_LOADER_H
#define CB_LOADER_H

#include <stddef.h>
#include <stdint.h>

struct bpf_object;

#define EXIT_USAGE 2
#define BPFFS_ROOT "/sys/fs/bpf"

/** "cb-bpf": the prefix of every message and the name in hints. */
extern const char loader_name[];

void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void usage(const char *why) __attribute__((noreturn));

/** The options every loader takes; the first member of each loader's own arguments. */
struct loader_paths {
	const char *obj, *pin, *netns, *ifname;
};

/**
 * One subcommand, in the order the usage lists them: its name, its synopsis for the usage, and what runs it
 * with the loader's arguments (NULL for `detach` and `unload`, which every loader has from here).
 */
struct loader_cmd {
	const char *name;
	const char *synopsis;
	int (*run)(void *args);
};

/** One --name VALUE option: a string (str) or an integer in [min, max] (num). */
struct loader_opt {
	const char *name;
	const char **str;
	long *num;
	long min, max;
};

/**
 * The loader's main: checks there is a subcommand, quiets libbpf's debug output, parses --obj, --pin, --netns,
 * --ifname into `paths` (the first member of `args`) and the loader's own `opts`, then runs the subcommand
 * argv[1] names; an unknown one, like any bad option, is a usage error.
 */
int loader_main(int argc, char **argv, struct loader_paths *paths, const struct loader_opt *opts, size_t nopts,
		const struct loader_cmd *cmds, size_t ncmds, void *args);

/** A missing required option is a usage error. */
void need(const void *v, const char *opt);
int open_pinned(const char *dir, const char *name);

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

double now_ms(void);
/** Entries of a map, by walking its keys (key_size at most 64). */
size_t count_keys(int fd, size_t key_size);

#endif
