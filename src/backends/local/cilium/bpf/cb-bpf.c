// cb-bpf: loader for the Cilium-style data plane model (cilium_model.bpf.o), with libbpf only (no bpftool).
//
//   cb-bpf load   --obj PATH --pin DIR --capacity N     load the object once, pin maps and programs under DIR
//   cb-bpf attach --pin DIR --netns NAME --ifname IF [--endpoint ID]
//                 enter /run/netns/NAME, add clsact to IF, attach from_pod (tc ingress) and to_pod (tc egress);
//                 prints {"ifindex":N}. --endpoint registers IF as that endpoint unless fill did; until a map is
//                 written for it, it denies everything (a fresh endpoint's empty policy map, as in Cilium).
//   cb-bpf detach --netns NAME --ifname IF              remove IF's clsact qdisc (and both programs)
//   cb-bpf fill   --pin DIR [--capacity N]              write the COMPLETE desired state read from stdin:
//       ipcache  A.B.C.D/LEN IDENTITY
//       endpoint IFINDEX ENDPOINT_ID INGRESS_ENFORCED(0|1) EGRESS_ENFORCED(0|1)
//       policy   ENDPOINT_ID IDENTITY ingress|egress PROTO(0=any|1|6|17|132) PORT PORT_PREFIX_BITS(0..16) [allow|deny]
//     Entries absent from the input are removed. Each endpoint's policy map is built fresh and swapped into
//     the outer map in one update, so a packet never sees a half-written policy.
//   cb-bpf delta  --pin DIR [--capacity N]              an incremental change, as the Cilium agent applies one:
//     the same lines prefixed with '+' (add or replace) or '-' (delete; ipcache takes only the prefix, endpoint
//     IFINDEX ENDPOINT_ID, policy the key without the verdict). Adds are written before deletes (the agent's
//     order, pkg/endpoint/bpf.go applyPolicyMapChanges: "add before deleting to avoid transient drops"); an
//     endpoint without a policy map gets one on its first '+policy' or '+endpoint'; '-endpoint' drops its map.
//     Only the named entries are touched.
//   cb-bpf stats  --pin DIR                             counters and map sizes as JSON
//   cb-bpf unload --pin DIR                             remove every pin and DIR
//
// Exit codes: 0 ok, 1 failure, 2 usage or input error, 3 policy map overflow. On overflow stderr carries one
// JSON line: {"error":"policy-map-full","endpoint":ID,"needed":N,"capacity":C}.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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

// Must match cilium_model.bpf.c.
struct ipcache_key { uint32_t prefixlen; uint32_t addr; };
struct ipcache_value { uint32_t identity; };
struct endpoint_info { uint32_t endpoint_id; uint32_t flags; };
struct policy_key { uint32_t prefixlen; uint32_t identity; uint8_t direction; uint8_t protocol; uint16_t dport; };
struct policy_entry { uint8_t flags; uint8_t lpm_prefix_length; uint16_t pad; };
#define EP_F_INGRESS_ENFORCED 1
#define EP_F_EGRESS_ENFORCED 2
#define POLICY_F_ALLOW 1
#define POLICY_F_DENY 2
#define CNT_MAX 8
static const char *counter_names[CNT_MAX] = {
	"packets", "policyLookups", "ctHits", "ctNew", "allowed", "drops", "ctReplies", "notIpv4",
};
static const char *map_names[] = { "ipcache", "endpoints", "policy", "ct", "counters", "config" };
static const char *prog_names[] = { "from_pod", "to_pod" };

#define EXIT_OVERFLOW 3

const char loader_name[] = "cb-bpf";

struct args {
	struct loader_paths p; // first: loader_main reads it
	long capacity, endpoint;
};

static int create_policy_map(const char *name, uint32_t capacity)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	return bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, name, sizeof(struct policy_key), sizeof(struct policy_entry),
			      capacity, &opts);
}

// The inner-map template at the configured capacity (libbpf 1.1 cannot resize the declared template:
// bpf_map__set_max_entries on an inner map dereferences a NULL object).
static void set_policy_template(struct bpf_object *obj, void *ctx)
{
	struct args *a = ctx;
	struct bpf_map *outer = bpf_object__find_map_by_name(obj, "policy");
	if (!outer || !bpf_map__inner_map(outer))
		die(1, "%s has no policy map-of-maps", a->p.obj);
	int tmpl = create_policy_map("cb_pol_tmpl", (uint32_t)a->capacity);
	if (tmpl < 0)
		die(1, "create policy map template (capacity %ld): %s", a->capacity, strerror(errno));
	if (bpf_map__set_inner_map_fd(outer, tmpl))
		die(1, "set policy map template: %s", strerror(errno));
}

static int cmd_load(void *arg)
{
	struct args *a = arg;
	need(a->p.obj, "--obj");
	need(a->p.pin, "--pin");
	if (a->capacity < 0)
		usage("missing --capacity");
	struct bpf_object *obj = load_and_pin(a->p.obj, a->p.pin, "ipcache", map_names, sizeof(map_names) / sizeof(map_names[0]),
					      prog_names, sizeof(prog_names) / sizeof(prog_names[0]), set_policy_template, a);
	uint32_t zero = 0, cap = (uint32_t)a->capacity;
	if (bpf_map_update_elem(object_map_fd(obj, "config"), &zero, &cap, BPF_ANY))
		die(1, "write config: %s", strerror(errno));
	bpf_object__close(obj);
	printf("{\"pin\":\"%s\",\"capacity\":%ld}\n", a->p.pin, a->capacity);
	return 0;
}

static int cmd_attach(void *arg)
{
	struct args *a = arg;
	need(a->p.pin, "--pin");
	need(a->p.netns, "--netns");
	need(a->p.ifname, "--ifname");
	// Pinned objects are opened before setns; only the network namespace changes, the bpffs view does not.
	int from_fd = open_pinned(a->p.pin, "from_pod");
	int to_fd = open_pinned(a->p.pin, "to_pod");
	int ep_fd = a->endpoint > 0 ? open_pinned(a->p.pin, "endpoints") : -1;
	unsigned ifindex = ifindex_in_netns(a->p.netns, a->p.ifname);

	// Registered before the programs see a packet: an endpoint without a policy map denies everything, so a pod
	// that appears is closed until its map is written (the CNI ADD waits for the endpoint's regeneration in Cilium).
	if (ep_fd >= 0) {
		struct endpoint_info info = { .endpoint_id = (uint32_t)a->endpoint, .flags = 0 };
		uint32_t key = ifindex;
		if (bpf_map_update_elem(ep_fd, &key, &info, BPF_NOEXIST) && errno != EEXIST)
			die(1, "register endpoint %ld: %s", a->endpoint, strerror(errno));
	}
	attach_tc_pair(ifindex, a->p.ifname, from_fd, "from_pod", to_fd, "to_pod");
	printf("{\"netns\":\"%s\",\"ifname\":\"%s\",\"ifindex\":%u}\n", a->p.netns, a->p.ifname, ifindex);
	return 0;
}

// ---- fill ----

struct vec { void *data; size_t len, cap, size; };

static void *vec_push(struct vec *v)
{
	if (v->len == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 256;
		v->data = realloc(v->data, v->cap * v->size);
		if (!v->data)
			die(1, "out of memory");
	}
	return (char *)v->data + v->size * v->len++;
}

struct policy_line { uint32_t endpoint_id; struct policy_key key; uint8_t flags; };
struct endpoint_line { uint32_t ifindex; struct endpoint_info info; };

static int cmp_policy_line(const void *x, const void *y)
{
	const struct policy_line *a = x, *b = y;
	return a->endpoint_id < b->endpoint_id ? -1 : a->endpoint_id > b->endpoint_id;
}

static int cmp_bytes8(const void *x, const void *y) { return memcmp(x, y, 8); }
static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}

static void input_error(long line, const char *what, const char *text)
{
	fprintf(stderr, "cb-bpf: stdin line %ld: %s: %s\n", line, what, text);
	exit(EXIT_USAGE);
}

static uint32_t parse_u32_field(const char *s, uint32_t max, long line, const char *what)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || !*s || *end || v > max || *s == '-')
		input_error(line, what, s);
	return (uint32_t)v;
}

// Writes keys/values: one batch syscall when the map type supports it, otherwise one update per element.
// Returns 0, or the failing errno (ENOSPC/E2BIG mean the map is full).
static int write_entries(int fd, const void *keys, const void *values, size_t n, size_t ksz, size_t vsz)
{
	if (n == 0)
		return 0;
	uint32_t count = (uint32_t)n;
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	if (bpf_map_update_batch(fd, keys, values, &count, &opts) == 0)
		return 0;
	int err = errno;
	if (err == ENOSPC || err == E2BIG)
		return err;
	// Batch not supported for this map type (or partly applied): per-element BPF_ANY updates are idempotent.
	for (size_t i = 0; i < n; i++) {
		if (bpf_map_update_elem(fd, (const char *)keys + i * ksz, (const char *)values + i * vsz, BPF_ANY))
			return errno;
	}
	return 0;
}

static void overflow(uint32_t endpoint_id, size_t needed, uint32_t capacity)
{
	fprintf(stderr, "{\"error\":\"policy-map-full\",\"endpoint\":%u,\"needed\":%zu,\"capacity\":%u}\n",
		endpoint_id, needed, capacity);
	exit(EXIT_OVERFLOW);
}

enum entry_kind { E_NONE, E_IPCACHE, E_ENDPOINT, E_POLICY };

struct entry {
	enum entry_kind kind;
	int op; // '+', '-' (delta) or 0 (fill)
	struct ipcache_key ipc_key;
	struct ipcache_value ipc_val;
	struct endpoint_line ep;
	struct policy_line pol;
};

static void parse_policy_key(struct policy_line *p, char **f, long lineno, const char *copy)
{
	p->endpoint_id = parse_u32_field(f[1], 65535, lineno, "endpoint id");
	p->key.identity = parse_u32_field(f[2], UINT32_MAX, lineno, "identity");
	if (!strcmp(f[3], "ingress")) p->key.direction = 0;
	else if (!strcmp(f[3], "egress")) p->key.direction = 1;
	else input_error(lineno, "direction must be ingress or egress", copy);
	p->key.protocol = (uint8_t)parse_u32_field(f[4], 255, lineno, "protocol");
	uint32_t port = parse_u32_field(f[5], 65535, lineno, "port");
	uint32_t bits = parse_u32_field(f[6], 16, lineno, "port prefix bits");
	if (p->key.protocol == 0 && (port || bits))
		input_error(lineno, "protocol 0 (any) takes port 0 and 0 prefix bits", copy);
	if (bits < 16 && (port & ((1u << (16 - bits)) - 1)))
		input_error(lineno, "port has bits set below its prefix", copy);
	p->key.dport = htons((uint16_t)port);
	p->key.prefixlen = p->key.protocol == 0 ? 40 : 48 + bits;
	p->flags = POLICY_F_ALLOW;
}

// One input line; delta lines start with '+' or '-'. Returns E_NONE for blank and comment lines.
static struct entry parse_line(char *line, long lineno, int delta)
{
	struct entry e = { .kind = E_NONE };
	char *save, *f[9];
	int nf = 0;
	line[strcspn(line, "\r\n")] = '\0';
	char copy[512];
	snprintf(copy, sizeof(copy), "%s", line);
	for (char *t = strtok_r(line, " \t", &save); t && nf < 9; t = strtok_r(NULL, " \t", &save))
		f[nf++] = t;
	if (nf == 0 || f[0][0] == '#')
		return e;
	if (delta) {
		if (f[0][0] != '+' && f[0][0] != '-')
			input_error(lineno, "delta lines start with + or -", copy);
		e.op = f[0][0];
		f[0]++;
	}
	int del = e.op == '-';
	if (!strcmp(f[0], "ipcache")) {
		if (nf != (del ? 2 : 3))
			input_error(lineno, del ? "expected '-ipcache A.B.C.D/LEN'" : "expected 'ipcache A.B.C.D/LEN IDENTITY'", copy);
		char *slash = strchr(f[1], '/');
		if (!slash)
			input_error(lineno, "prefix without /LEN", copy);
		*slash = '\0';
		struct in_addr addr;
		if (inet_pton(AF_INET, f[1], &addr) != 1)
			input_error(lineno, "bad IPv4 address", copy);
		uint32_t len = parse_u32_field(slash + 1, 32, lineno, "prefix length");
		uint32_t mask = len ? htonl(~0u << (32 - len)) : 0;
		e.kind = E_IPCACHE;
		e.ipc_key = (struct ipcache_key){ .prefixlen = len, .addr = addr.s_addr & mask };
		if (!del)
			e.ipc_val.identity = parse_u32_field(f[2], UINT32_MAX, lineno, "identity");
	} else if (!strcmp(f[0], "endpoint")) {
		if (nf != (del ? 3 : 5))
			input_error(lineno, del ? "expected '-endpoint IFINDEX ID'" : "expected 'endpoint IFINDEX ID INGRESS(0|1) EGRESS(0|1)'", copy);
		e.kind = E_ENDPOINT;
		e.ep.ifindex = parse_u32_field(f[1], INT32_MAX, lineno, "ifindex");
		e.ep.info.endpoint_id = parse_u32_field(f[2], 65535, lineno, "endpoint id");
		if (!del)
			e.ep.info.flags = (parse_u32_field(f[3], 1, lineno, "ingress flag") ? EP_F_INGRESS_ENFORCED : 0) |
					  (parse_u32_field(f[4], 1, lineno, "egress flag") ? EP_F_EGRESS_ENFORCED : 0);
	} else if (!strcmp(f[0], "policy")) {
		if (nf != 7 && !(nf == 8 && !del))
			input_error(lineno, "expected 'policy ID IDENTITY ingress|egress PROTO PORT BITS [allow|deny]'", copy);
		e.kind = E_POLICY;
		parse_policy_key(&e.pol, f, lineno, copy);
		if (nf == 8) {
			if (!strcmp(f[7], "deny")) e.pol.flags = POLICY_F_DENY;
			else if (strcmp(f[7], "allow")) input_error(lineno, "verdict must be allow or deny", copy);
		}
	} else {
		input_error(lineno, "unknown entry kind (ipcache, endpoint, policy)", copy);
	}
	return e;
}

static struct policy_entry policy_value(const struct policy_line *p)
{
	// Cilium's lpm_prefix_length: the protocol and port bits of the key (prefixlen minus identity+direction).
	return (struct policy_entry){ .flags = p->flags, .lpm_prefix_length = (uint8_t)(p->key.prefixlen - 40) };
}

static uint32_t read_capacity(struct args *a)
{
	uint32_t capacity = (uint32_t)a->capacity;
	if (a->capacity < 0) {
		int cfg_fd = open_pinned(a->p.pin, "config");
		uint32_t zero = 0;
		if (bpf_map_lookup_elem(cfg_fd, &zero, &capacity) || capacity == 0)
			die(1, "read policy-map capacity from %s/config: %s", a->p.pin, strerror(errno));
		close(cfg_fd);
	}
	return capacity;
}

static int cmd_fill(void *arg)
{
	struct args *a = arg;
	need(a->p.pin, "--pin");
	double t0 = now_ms();
	struct vec ipc_keys = { .size = sizeof(struct ipcache_key) }, ipc_vals = { .size = sizeof(struct ipcache_value) };
	struct vec eps = { .size = sizeof(struct endpoint_line) };
	struct vec pols = { .size = sizeof(struct policy_line) };

	char *line = NULL;
	size_t linecap = 0;
	long lineno = 0;
	while (getline(&line, &linecap, stdin) >= 0) {
		struct entry e = parse_line(line, ++lineno, 0);
		if (e.kind == E_IPCACHE) {
			*(struct ipcache_key *)vec_push(&ipc_keys) = e.ipc_key;
			*(struct ipcache_value *)vec_push(&ipc_vals) = e.ipc_val;
		} else if (e.kind == E_ENDPOINT) {
			*(struct endpoint_line *)vec_push(&eps) = e.ep;
		} else if (e.kind == E_POLICY) {
			*(struct policy_line *)vec_push(&pols) = e.pol;
		}
	}
	free(line);

	int ipc_fd = open_pinned(a->p.pin, "ipcache");
	int ep_fd = open_pinned(a->p.pin, "endpoints");
	int outer_fd = open_pinned(a->p.pin, "policy");
	uint32_t capacity = read_capacity(a);

	// Endpoints that get a policy map: every listed endpoint (an enforced endpoint with no entries denies all)
	// and every endpoint a policy line names.
	qsort(pols.data, pols.len, pols.size, cmp_policy_line);
	struct vec ids = { .size = sizeof(uint32_t) };
	for (size_t i = 0; i < eps.len; i++)
		*(uint32_t *)vec_push(&ids) = ((struct endpoint_line *)eps.data)[i].info.endpoint_id;
	for (size_t i = 0; i < pols.len; i++)
		*(uint32_t *)vec_push(&ids) = ((struct policy_line *)pols.data)[i].endpoint_id;
	qsort(ids.data, ids.len, ids.size, cmp_u32);
	size_t nids = 0;
	for (size_t i = 0; i < ids.len; i++) {
		uint32_t id = ((uint32_t *)ids.data)[i];
		if (nids == 0 || ((uint32_t *)ids.data)[nids - 1] != id)
			((uint32_t *)ids.data)[nids++] = id;
	}

	// Safety net before touching the kernel: the TS compiler should have refused already.
	for (size_t i = 0, j; i < pols.len; i = j) {
		uint32_t id = ((struct policy_line *)pols.data)[i].endpoint_id;
		for (j = i; j < pols.len && ((struct policy_line *)pols.data)[j].endpoint_id == id; j++)
			;
		if (j - i > capacity)
			overflow(id, j - i, capacity);
	}

	int err = write_entries(ipc_fd, ipc_keys.data, ipc_vals.data, ipc_keys.len, ipc_keys.size, ipc_vals.size);
	if (err)
		die(1, "write ipcache: %s", strerror(err));

	struct policy_key *pkeys = malloc((pols.len ? pols.len : 1) * sizeof(*pkeys));
	struct policy_entry *pvals = malloc((pols.len ? pols.len : 1) * sizeof(*pvals));
	if (!pkeys || !pvals)
		die(1, "out of memory");
	size_t pi = 0;
	char json_counts[1 << 16];
	size_t jlen = 0;
	json_counts[0] = '\0';
	for (size_t i = 0; i < nids; i++) {
		uint32_t id = ((uint32_t *)ids.data)[i];
		size_t n = 0;
		while (pi < pols.len && ((struct policy_line *)pols.data)[pi].endpoint_id == id) {
			pkeys[n] = ((struct policy_line *)pols.data)[pi].key;
			pvals[n] = policy_value(&((struct policy_line *)pols.data)[pi]);
			n++, pi++;
		}
		char name[16];
		snprintf(name, sizeof(name), "cb_pol_%u", id);
		int inner = create_policy_map(name, capacity);
		if (inner < 0)
			die(1, "create policy map for endpoint %u (capacity %u): %s", id, capacity, strerror(errno));
		err = write_entries(inner, pkeys, pvals, n, sizeof(*pkeys), sizeof(*pvals));
		if (err == ENOSPC || err == E2BIG)
			overflow(id, n, capacity);
		if (err)
			die(1, "write policy map of endpoint %u: %s", id, strerror(err));
		if (bpf_map_update_elem(outer_fd, &id, &inner, BPF_ANY))
			die(1, "install policy map of endpoint %u: %s", id, strerror(errno));
		close(inner); // the outer map holds the reference now
		if (jlen < sizeof(json_counts) - 64)
			jlen += (size_t)snprintf(json_counts + jlen, sizeof(json_counts) - jlen, "%s\"%u\":%zu",
						 i ? "," : "", id, n);
	}

	struct vec ep_keys = { .size = sizeof(uint32_t) }, ep_vals = { .size = sizeof(struct endpoint_info) };
	for (size_t i = 0; i < eps.len; i++) {
		*(uint32_t *)vec_push(&ep_keys) = ((struct endpoint_line *)eps.data)[i].ifindex;
		*(struct endpoint_info *)vec_push(&ep_vals) = ((struct endpoint_line *)eps.data)[i].info;
	}
	err = write_entries(ep_fd, ep_keys.data, ep_vals.data, ep_keys.len, ep_keys.size, ep_vals.size);
	if (err)
		die(1, "write endpoints: %s", strerror(err));

	// Remove what the desired state no longer has: endpoints first, so no endpoint points at a missing policy.
	size_t removed = 0;
	qsort(ep_keys.data, ep_keys.len, ep_keys.size, cmp_u32);
	uint32_t cur, next;
	int more = bpf_map_get_next_key(ep_fd, NULL, &cur) == 0;
	while (more) {
		more = bpf_map_get_next_key(ep_fd, &cur, &next) == 0;
		if (!bsearch(&cur, ep_keys.data, ep_keys.len, ep_keys.size, cmp_u32) && !bpf_map_delete_elem(ep_fd, &cur))
			removed++;
		cur = next;
	}
	more = bpf_map_get_next_key(outer_fd, NULL, &cur) == 0;
	while (more) {
		more = bpf_map_get_next_key(outer_fd, &cur, &next) == 0;
		if (!bsearch(&cur, ids.data, nids, ids.size, cmp_u32) && !bpf_map_delete_elem(outer_fd, &cur))
			removed++;
		cur = next;
	}
	qsort(ipc_keys.data, ipc_keys.len, ipc_keys.size, cmp_bytes8);
	struct vec stale = { .size = sizeof(struct ipcache_key) };
	struct ipcache_key ik, in;
	more = bpf_map_get_next_key(ipc_fd, NULL, &ik) == 0;
	while (more) {
		if (!bsearch(&ik, ipc_keys.data, ipc_keys.len, ipc_keys.size, cmp_bytes8))
			*(struct ipcache_key *)vec_push(&stale) = ik;
		more = bpf_map_get_next_key(ipc_fd, &ik, &in) == 0;
		ik = in;
	}
	for (size_t i = 0; i < stale.len; i++)
		if (!bpf_map_delete_elem(ipc_fd, (struct ipcache_key *)stale.data + i))
			removed++;

	printf("{\"ipcache\":%zu,\"endpoints\":%zu,\"policy\":{%s},\"removed\":%zu,\"capacity\":%u,\"ms\":%.3f}\n",
	       ipc_keys.len, eps.len, json_counts, removed, capacity, now_ms() - t0);
	return 0;
}

// ---- delta ----

// The policy map of an endpoint, created (and installed in the outer map) when it has none yet.
static int endpoint_policy_map(int outer_fd, uint32_t id, uint32_t capacity, int create, size_t *created)
{
	uint32_t inner_id;
	if (bpf_map_lookup_elem(outer_fd, &id, &inner_id) == 0) {
		int fd = bpf_map_get_fd_by_id(inner_id);
		if (fd < 0)
			die(1, "open policy map of endpoint %u: %s", id, strerror(errno));
		return fd;
	}
	if (!create)
		return -1;
	char name[16];
	snprintf(name, sizeof(name), "cb_pol_%u", id);
	int fd = create_policy_map(name, capacity);
	if (fd < 0)
		die(1, "create policy map for endpoint %u (capacity %u): %s", id, capacity, strerror(errno));
	if (bpf_map_update_elem(outer_fd, &id, &fd, BPF_NOEXIST))
		die(1, "install policy map of endpoint %u: %s", id, strerror(errno));
	(*created)++;
	return fd;
}

static size_t count_keys_of(int fd) { return count_keys(fd, sizeof(struct policy_key)); }

static int cmd_delta(void *arg)
{
	struct args *a = arg;
	need(a->p.pin, "--pin");
	double t0 = now_ms();
	struct vec entries = { .size = sizeof(struct entry) };
	char *line = NULL;
	size_t linecap = 0;
	long lineno = 0;
	while (getline(&line, &linecap, stdin) >= 0) {
		struct entry e = parse_line(line, ++lineno, 1);
		if (e.kind != E_NONE)
			*(struct entry *)vec_push(&entries) = e;
	}
	free(line);

	int ipc_fd = open_pinned(a->p.pin, "ipcache");
	int ep_fd = open_pinned(a->p.pin, "endpoints");
	int outer_fd = open_pinned(a->p.pin, "policy");
	uint32_t capacity = read_capacity(a);
	size_t added = 0, deleted = 0, ipc_added = 0, ipc_deleted = 0, ep_added = 0, ep_deleted = 0, maps_created = 0;
	struct vec retry = { .size = sizeof(struct entry *) };

	// Pass 1, adds: ipcache, policy entries (a new endpoint's map is created on its first entry), endpoints.
	// Pass 2, deletes: policy entries, endpoints (with their maps), ipcache.
	for (int pass = 0; pass < 2; pass++) {
		int op = pass == 0 ? '+' : '-';
		for (size_t i = 0; i < entries.len; i++) {
			struct entry *e = (struct entry *)entries.data + i;
			if (e->op != op)
				continue;
			if (e->kind == E_IPCACHE && op == '+') {
				if (bpf_map_update_elem(ipc_fd, &e->ipc_key, &e->ipc_val, BPF_ANY))
					die(1, "ipcache add: %s", strerror(errno));
				ipc_added++;
			} else if (e->kind == E_POLICY && op == '+') {
				int fd = endpoint_policy_map(outer_fd, e->pol.endpoint_id, capacity, 1, &maps_created);
				struct policy_entry v = policy_value(&e->pol);
				if (bpf_map_update_elem(fd, &e->pol.key, &v, BPF_ANY)) {
					int err = errno;
					if (err != ENOSPC && err != E2BIG)
						die(1, "policy add (endpoint %u): %s", e->pol.endpoint_id, strerror(err));
					// Full: retried after the deletes, as syncPolicyMap retries adds once space is freed.
					*(struct entry **)vec_push(&retry) = e;
					close(fd);
					continue;
				}
				close(fd);
				added++;
			} else if (e->kind == E_ENDPOINT && op == '+') {
				int fd = endpoint_policy_map(outer_fd, e->ep.info.endpoint_id, capacity, 1, &maps_created);
				close(fd);
				if (bpf_map_update_elem(ep_fd, &e->ep.ifindex, &e->ep.info, BPF_ANY))
					die(1, "endpoint add: %s", strerror(errno));
				ep_added++;
			} else if (e->kind == E_POLICY && op == '-') {
				int fd = endpoint_policy_map(outer_fd, e->pol.endpoint_id, capacity, 0, &maps_created);
				if (fd >= 0) {
					if (!bpf_map_delete_elem(fd, &e->pol.key))
						deleted++;
					close(fd);
				}
			} else if (e->kind == E_ENDPOINT && op == '-') {
				if (!bpf_map_delete_elem(ep_fd, &e->ep.ifindex))
					ep_deleted++;
				bpf_map_delete_elem(outer_fd, &e->ep.info.endpoint_id);
			}
		}
	}
	for (size_t i = 0; i < retry.len; i++) {
		struct entry *e = ((struct entry **)retry.data)[i];
		int fd = endpoint_policy_map(outer_fd, e->pol.endpoint_id, capacity, 1, &maps_created);
		struct policy_entry v = policy_value(&e->pol);
		if (bpf_map_update_elem(fd, &e->pol.key, &v, BPF_ANY)) {
			int err = errno;
			if (err == ENOSPC || err == E2BIG) {
				fprintf(stderr, "{\"error\":\"policy-map-full\",\"endpoint\":%u,\"needed\":%zu,\"capacity\":%u}\n",
					e->pol.endpoint_id, count_keys_of(fd) + 1, capacity);
				exit(EXIT_OVERFLOW);
			}
			die(1, "policy add (endpoint %u): %s", e->pol.endpoint_id, strerror(err));
		}
		close(fd);
		added++;
	}
	for (size_t i = 0; i < entries.len; i++) {
		struct entry *e = (struct entry *)entries.data + i;
		if (e->kind == E_IPCACHE && e->op == '-' && !bpf_map_delete_elem(ipc_fd, &e->ipc_key))
			ipc_deleted++;
	}
	printf("{\"policyAdded\":%zu,\"policyDeleted\":%zu,\"ipcacheAdded\":%zu,\"ipcacheDeleted\":%zu,"
	       "\"endpointsAdded\":%zu,\"endpointsDeleted\":%zu,\"policyMapsCreated\":%zu,\"ms\":%.3f}\n",
	       added, deleted, ipc_added, ipc_deleted, ep_added, ep_deleted, maps_created, now_ms() - t0);
	return 0;
}

// ---- stats ----

static long memlock_of(int fd)
{
	char p[64], buf[256];
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(p, "r");
	long v = -1;
	if (!f)
		return -1;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "memlock: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int cmd_stats(void *arg)
{
	struct args *a = arg;
	need(a->p.pin, "--pin");
	int cnt_fd = open_pinned(a->p.pin, "counters");
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		die(1, "count CPUs: %s", strerror(-ncpu));
	uint64_t *vals = calloc((size_t)ncpu, sizeof(uint64_t));
	printf("{\"counters\":{");
	for (uint32_t i = 0; i < CNT_MAX; i++) {
		uint64_t sum = 0;
		if (bpf_map_lookup_elem(cnt_fd, &i, vals))
			die(1, "read counter %u: %s", i, strerror(errno));
		for (int c = 0; c < ncpu; c++)
			sum += vals[c];
		printf("%s\"%s\":%llu", i ? "," : "", counter_names[i], (unsigned long long)sum);
	}
	printf("},\"maps\":{");
	struct { const char *name; size_t ksz; } plain[] = {
		{ "ipcache", sizeof(struct ipcache_key) }, { "endpoints", 4 }, { "ct", 16 },
	};
	for (size_t i = 0; i < 3; i++) {
		int fd = open_pinned(a->p.pin, plain[i].name);
		printf("\"%s\":{\"entries\":%zu,\"memlockBytes\":%ld},", plain[i].name, count_keys(fd, plain[i].ksz),
		       memlock_of(fd));
		close(fd);
	}
	int outer_fd = open_pinned(a->p.pin, "policy");
	printf("\"policy\":{\"memlockBytes\":%ld,\"endpoints\":{", memlock_of(outer_fd));
	uint32_t cur, next;
	int first = 1, more = bpf_map_get_next_key(outer_fd, NULL, &cur) == 0;
	while (more) {
		uint32_t inner_id;
		if (bpf_map_lookup_elem(outer_fd, &cur, &inner_id) == 0) {
			int fd = bpf_map_get_fd_by_id(inner_id);
			if (fd >= 0) {
				struct bpf_map_info info = {};
				uint32_t len = sizeof(info);
				bpf_obj_get_info_by_fd(fd, &info, &len);
				printf("%s\"%u\":{\"entries\":%zu,\"maxEntries\":%u,\"memlockBytes\":%ld}", first ? "" : ",",
				       cur, count_keys(fd, sizeof(struct policy_key)), info.max_entries, memlock_of(fd));
				first = 0;
				close(fd);
			}
		}
		more = bpf_map_get_next_key(outer_fd, &cur, &next) == 0;
		cur = next;
	}
	printf("}}}}\n");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct loader_cmd cmds[] = {
		{ "load", "--obj PATH --pin DIR --capacity N", cmd_load },
		{ "attach", "--pin DIR --netns NAME --ifname IF [--endpoint ID]", cmd_attach },
		{ "detach", "--netns NAME --ifname IF", NULL },
		{ "fill", "--pin DIR [--capacity N] < entries", cmd_fill },
		{ "delta", "--pin DIR [--capacity N] < +/- entries", cmd_delta },
		{ "stats", "--pin DIR", cmd_stats },
		{ "unload", "--pin DIR", NULL },
	};
	struct args a = { .capacity = -1, .endpoint = -1 };
	const struct loader_opt opts[] = {
		{ "--capacity", NULL, &a.capacity, 1, 1 << 24 },
		{ "--endpoint", NULL, &a.endpoint, 1, 65535 },
	};
	return loader_main(argc, argv, &a.p, opts, sizeof(opts) / sizeof(opts[0]), cmds, sizeof(cmds) / sizeof(cmds[0]), &a);
}
