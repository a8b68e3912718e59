// CPU accounting of a measured window, at nanosecond resolution (issue 20): the probe's own CPU, other tasks'
// CPU (the echo server, the pinned CPU's ksoftirqd) and the run time of the data plane's BPF programs.
#ifndef CB_PROBE_ACCOUNT_H
#define CB_PROBE_ACCOUNT_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define ACCOUNT_MAX_PIDS 16
#define ACCOUNT_MAX_PROGS 256

struct account {
  pid_t pids[ACCOUNT_MAX_PIDS];
  int npids;
  uint32_t prog_ids[ACCOUNT_MAX_PROGS];
  int nprogs;
  // BPF_ENABLE_STATS fd (held while counting), and one fd per program; -1 when not open.
  int stats_fd;
  int prog_fds[ACCOUNT_MAX_PROGS];
  // Why BPF run time could not be counted (empty when it was, or when no program was asked for).
  char bpf_error[160];
};

struct account_reading {
  uint64_t self_ns;
  // CPU-time clock of each accounted pid; UINT64_MAX when it could not be read (the task is gone).
  uint64_t pid_ns[ACCOUNT_MAX_PIDS];
  uint64_t bpf_run_ns, bpf_run_cnt;
};

void account_init(struct account *a);
// Parse errors are reported by the caller; these return 0 on success, -1 when the table is full.
int account_add_pid(struct account *a, long pid);
int account_add_prog(struct account *a, long id);
// Turns BPF run-time statistics on (held by an fd until account_close) and opens the programs. Failures are
// recorded in a->bpf_error, never fatal: the rest of the accounting still works.
void account_open(struct account *a);
// Waits (sleeping, so it gets the CPU) until the first accounted process's clock (the echo server's) stops moving:
// its backlog of accepts and closes of operations already done is then in the reading. At most ~20 ms.
void account_settle(const struct account *a);
void account_read(const struct account *a, struct account_reading *r);
// The window's JSON fields (without braces, starting with a comma).
void account_print(FILE *out, const struct account *a, const struct account_reading *r0, const struct account_reading *r1);
void account_close(struct account *a);

// `cb-probe bpf-progs --pin-dir DIR`: ids of the BPF programs pinned under DIR, as JSON.
int cmd_bpf_progs(int argc, char **argv);

#endif
