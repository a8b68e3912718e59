// CPU accounting of the probe's measured window (see account.h).
//
// Sources, all nanosecond:
// - the probe client itself: CLOCK_PROCESS_CPUTIME_ID (the sum of its threads' run time, brought up to date at
//   the read);
// - other tasks (the echo server, ksoftirqd of the pinned CPU): their process CPU-time clocks
//   (clock_getcpuclockid). The kernel lets any process read another's (kernel/time/posix-cpu-timers.c,
//   pid_for_clock); the value is the tasks' sum_exec_runtime, complete for a task that is not on a CPU at the
//   read. When client, server and ksoftirqd share one CPU, the client reading it is the one running there, so the
//   others' counters are complete; otherwise a task running elsewhere may lag by up to one tick (tick_ns below).
// - BPF programs: run_time_ns / run_cnt of bpf_prog_info, which the kernel counts only while some process holds
//   a BPF_ENABLE_STATS fd (kernel/bpf/syscall.c, bpf_enable_runtime_stats). We hold one for the invocation and
//   close it at exit; the kernel.bpf_stats_enabled sysctl is never written. A tail-called program's time is
//   counted in the program that was entered (the timing wraps the whole run), so summing every program is exact.
#define _GNU_SOURCE
#include "account.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t clock_ns(clockid_t clk) {
  struct timespec ts;
  if (clock_gettime(clk, &ts) != 0) return UINT64_MAX;
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long sys_bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

void account_init(struct account *a) {
  memset(a, 0, sizeof(*a));
  a->stats_fd = -1;
  for (int i = 0; i < ACCOUNT_MAX_PROGS; i++) a->prog_fds[i] = -1;
}

int account_add_pid(struct account *a, long pid) {
  if (a->npids >= ACCOUNT_MAX_PIDS) return -1;
  a->pids[a->npids++] = (pid_t)pid;
  return 0;
}

int account_add_prog(struct account *a, long id) {
  if (a->nprogs >= ACCOUNT_MAX_PROGS) return -1;
  a->prog_ids[a->nprogs++] = (uint32_t)id;
  return 0;
}

void account_open(struct account *a) {
  if (a->nprogs == 0) return;
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.enable_stats.type = BPF_STATS_RUN_TIME;
  long fd = sys_bpf(BPF_ENABLE_STATS, &attr);
  if (fd < 0) {
    snprintf(a->bpf_error, sizeof(a->bpf_error), "BPF_ENABLE_STATS: %s", strerror(errno));
    return;
  }
  a->stats_fd = (int)fd;
  for (int i = 0; i < a->nprogs; i++) {
    memset(&attr, 0, sizeof(attr));
    attr.prog_id = a->prog_ids[i];
    long pfd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    if (pfd < 0) {
      snprintf(a->bpf_error, sizeof(a->bpf_error), "BPF program %u: %s", a->prog_ids[i], strerror(errno));
      return;
    }
    a->prog_fds[i] = (int)pfd;
  }
}

// A batch echo server never preempts the client: on a shared CPU it accepts and closes in bursts, when the client
// blocks or at a tick, so at any moment it may hold a backlog of up to a tick's worth of operations. Reading its
// clock then would leave that work out at one edge and in at the other; letting it drain first keeps each window's
// work in its window. Only the first accounted process (the server) is waited for: ksoftirqd also serves whatever
// else the CPU runs, and may never be idle on a busy machine. At most 20 ms.
void account_settle(const struct account *a) {
  clockid_t clk;
  if (a->npids == 0 || clock_getcpuclockid(a->pids[0], &clk) != 0) return;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  uint64_t prev = clock_ns(clk);
  for (int i = 0; i < 20; i++) {
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
    nanosleep(&ts, NULL);
    uint64_t cur = clock_ns(clk);
    if (cur == prev) return;
    prev = cur;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) > 20000000L) return;
  }
}

void account_read(const struct account *a, struct account_reading *r) {
  memset(r, 0, sizeof(*r));
  // Other tasks first, self last: the self clock then also covers the reads, on both edges alike.
  for (int i = 0; i < a->npids; i++) {
    clockid_t clk;
    r->pid_ns[i] = clock_getcpuclockid(a->pids[i], &clk) == 0 ? clock_ns(clk) : UINT64_MAX;
  }
  if (a->stats_fd >= 0 && a->bpf_error[0] == '\0') {
    for (int i = 0; i < a->nprogs; i++) {
      struct bpf_prog_info info;
      memset(&info, 0, sizeof(info));
      union bpf_attr attr;
      memset(&attr, 0, sizeof(attr));
      attr.info.bpf_fd = (uint32_t)a->prog_fds[i];
      attr.info.info_len = sizeof(info);
      attr.info.info = (uint64_t)(uintptr_t)&info;
      if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) == 0) {
        r->bpf_run_ns += info.run_time_ns;
        r->bpf_run_cnt += info.run_cnt;
      }
    }
  }
  r->self_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static uint64_t res_ns(clockid_t clk) {
  struct timespec ts;
  if (clock_getres(clk, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void account_print(FILE *out, const struct account *a, const struct account_reading *r0, const struct account_reading *r1) {
  // clock_getres of the coarse clock is the length of a tick (1/CONFIG_HZ).
  fprintf(out, ",\"cpu_ns\":%llu,\"cpu_clock_res_ns\":%llu,\"tick_ns\":%llu,\"accounted\":[",
          (unsigned long long)(r1->self_ns - r0->self_ns), (unsigned long long)res_ns(CLOCK_PROCESS_CPUTIME_ID),
          (unsigned long long)res_ns(CLOCK_MONOTONIC_COARSE));
  for (int i = 0; i < a->npids; i++) {
    int ok = r0->pid_ns[i] != UINT64_MAX && r1->pid_ns[i] != UINT64_MAX && r1->pid_ns[i] >= r0->pid_ns[i];
    if (ok) fprintf(out, "%s{\"pid\":%d,\"ns\":%llu}", i ? "," : "", (int)a->pids[i], (unsigned long long)(r1->pid_ns[i] - r0->pid_ns[i]));
    else fprintf(out, "%s{\"pid\":%d,\"ns\":null}", i ? "," : "", (int)a->pids[i]);
  }
  fputc(']', out);
  if (a->nprogs == 0) return;
  if (a->bpf_error[0] != '\0') {
    fprintf(out, ",\"bpf\":{\"programs\":%d,\"error\":\"", a->nprogs);
    for (const char *c = a->bpf_error; *c; c++) fputc(*c == '"' || *c == '\\' ? '\'' : *c, out);
    fputs("\"}", out);
    return;
  }
  fprintf(out, ",\"bpf\":{\"programs\":%d,\"run_ns\":%llu,\"run_cnt\":%llu}", a->nprogs,
          (unsigned long long)(r1->bpf_run_ns - r0->bpf_run_ns), (unsigned long long)(r1->bpf_run_cnt - r0->bpf_run_cnt));
}

void account_close(struct account *a) {
  for (int i = 0; i < a->nprogs; i++)
    if (a->prog_fds[i] >= 0) close(a->prog_fds[i]);
  if (a->stats_fd >= 0) close(a->stats_fd);
  a->stats_fd = -1;
}

// ---------------------------------------------------------------------------------------------------- bpf-progs
// The programs a run pinned (/sys/fs/bpf/cb-<runid>/…). Runs in the host's mount namespace: `ip netns exec`
// mounts a fresh /sys, where the bpffs is not visible, so the client is handed ids instead of paths.

static uint32_t found_ids[ACCOUNT_MAX_PROGS];
static int nfound;

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (type != FTW_F) return 0;
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.pathname = (uint64_t)(uintptr_t)path;
  long fd = sys_bpf(BPF_OBJ_GET, &attr);
  if (fd < 0) return 0;
  char link[64], target[64];
  snprintf(link, sizeof(link), "/proc/self/fd/%ld", fd);
  ssize_t n = readlink(link, target, sizeof(target) - 1);
  target[n > 0 ? n : 0] = '\0';
  if (strcmp(target, "anon_inode:bpf-prog") == 0) {
    struct bpf_prog_info info;
    memset(&info, 0, sizeof(info));
    memset(&attr, 0, sizeof(attr));
    attr.info.bpf_fd = (uint32_t)fd;
    attr.info.info_len = sizeof(info);
    attr.info.info = (uint64_t)(uintptr_t)&info;
    if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) == 0) {
      int seen = 0;
      for (int i = 0; i < nfound; i++) seen |= found_ids[i] == info.id;
      if (!seen && nfound < ACCOUNT_MAX_PROGS) found_ids[nfound++] = info.id;
    }
  }
  close((int)fd);
  return 0;
}

int cmd_bpf_progs(int argc, char **argv) {
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--pin-dir") && i + 1 < argc) dir = argv[++i];
    else {
      fprintf(stderr, "cb-probe: bpf-progs: unexpected argument '%s'\nusage: cb-probe bpf-progs --pin-dir DIR\n", argv[i]);
      return 2;
    }
  }
  if (!dir) {
    fprintf(stderr, "cb-probe: bpf-progs: --pin-dir is required\nusage: cb-probe bpf-progs --pin-dir DIR\n");
    return 2;
  }
  // A missing directory is no error: the run has no BPF data plane.
  if (access(dir, F_OK) == 0 && nftw(dir, visit, 16, FTW_PHYS) != 0) {
    fprintf(stderr, "cb-probe: bpf-progs: walking %s: %s\n", dir, strerror(errno));
    return 1;
  }
  printf("{\"prog_ids\":[");
  for (int i = 0; i < nfound; i++) printf(i ? ",%u" : "%u", found_ids[i]);
  printf("]}\n");
  return 0;
}
