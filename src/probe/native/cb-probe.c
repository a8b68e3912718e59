// cb-probe: the benchmark's load generator and echo server, in C so that the harness's own latency floor stays
// close to a bare connect() loop (Node's event loop would add tens of microseconds per sample).
//
//   cb-probe server --port P [--port P2 ...] [--bind ADDR] [--udp] [--cpu N ...] [--batch]
//   cb-probe client --target IP --port P --mode connect|crr|rr --samples N --warmup W --concurrency C [--timeout-ms T]
//                   [--cpu N ...] [--account PID ...] [--bpf-prog ID ...] [--reference N [--reference-warmup W]
//                   [--reference-batch] [--reference-cgroup-fd FD]]
//   cb-probe bpf-progs --pin-dir DIR
//   cb-probe check  --target IP --port P [--udp] [--timeout-ms T]
//   cb-probe watch  --target IP --port P [--interval-us I] [--timeout-ms T] [--max-ms D] [--until open|closed]
//                   [--settle K] [--realtime] [--control-stdin] [--cpu N ...]
//
// Exit codes: 0 ok, 1 failure (check: refused/timeout; others: runtime error), 2 usage error.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "account.h"

#define MAX_PORTS 1024
#define MAX_ERRNO 4096
#define LISTEN_BACKLOG 4096
#define ECHO_BUF 65536
// Error slots past the errno range, for failures that have no errno.
#define ERR_EOF MAX_ERRNO
#define ERR_SLOTS (MAX_ERRNO + 1)

static const char *prog = "cb-probe";

static const char usage_text[] =
    "usage:\n"
    "  cb-probe server --port P [--port P2 ...] [--bind ADDR] [--udp] [--cpu N ...] [--batch]\n"
    "  cb-probe client --target IP --port P --mode connect|crr|rr --samples N [--warmup W] [--concurrency C] "
    "[--timeout-ms T] [--cpu N ...] [--account PID ...] [--bpf-prog ID ...] [--reference N [--reference-warmup W] "
    "[--reference-batch] [--reference-cgroup-fd FD]]\n"
    "  cb-probe check --target IP --port P [--udp] [--timeout-ms T]\n"
    "  cb-probe watch --target IP --port P [--interval-us I] [--timeout-ms T] [--max-ms D] [--until open|closed] "
    "[--settle K] [--realtime] [--control-stdin] [--cpu N ...]\n"
    "  cb-probe bpf-progs --pin-dir DIR\n";

static void usage_error(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n%s", usage_text);
  exit(2);
}

static void die_errno(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
  exit(1);
}

static long parse_long(const char *opt, const char *s, long min, long max) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
    usage_error("--%s must be an integer in [%ld, %ld], got '%s'", opt, min, max, s);
  return v;
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t tv_ns(struct timeval tv) { return (uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000ull; }

static const char *err_name(int slot) {
  if (slot == ERR_EOF) return "EOF";
  const char *n = strerrorname_np(slot);
  return n ? n : "EUNKNOWN";
}

// Fills *ss from a literal IPv4 or IPv6 address; returns the sockaddr length, or 0 if not an address.
static socklen_t make_addr(const char *ip, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    return sizeof(*v4);
  }
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    return sizeof(*v6);
  }
  return 0;
}

static void set_timeouts(int fd, int timeout_ms) {
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

// --cpu N (repeatable): pins the process, before any thread starts, so client and server can be kept on different
// CPUs (sharing one CPU adds ~50% to a connect on a veth, and the scheduler's choice varies run to run).
static cpu_set_t pin_set;
static int pin_count;

static void add_pin(const char *arg) {
  long cpu = parse_long("cpu", arg, 0, CPU_SETSIZE - 1);
  CPU_SET((int)cpu, &pin_set);
  pin_count++;
}

static void apply_pins(void) {
  if (pin_count && sched_setaffinity(0, sizeof(pin_set), &pin_set) < 0) die_errno("sched_setaffinity (--cpu)");
}

// ---------------------------------------------------------------------------------------------------- server

struct server {
  int listen_fds[MAX_PORTS];
  int udp_fds[MAX_PORTS];
  int nports;
  int udp;
};

// Marks a listening/UDP fd in epoll data so workers can tell them from connections.
#define TAG_LISTEN (1ull << 62)
#define TAG_UDP (1ull << 61)

static void write_all(int fd, const char *buf, ssize_t n) {
  ssize_t off = 0;
  while (off < n) {
    ssize_t w = write(fd, buf + off, (size_t)(n - off));
    if (w > 0) {
      off += w;
    } else if (w < 0 && errno == EAGAIN) {
      // The peer is not reading; wait briefly rather than keep per-connection output buffers.
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      if (poll(&p, 1, 1000) <= 0) return;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      return;
    }
  }
}

static void *server_worker(void *arg) {
  struct server *s = arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die_errno("epoll_create1");
  // Every worker watches every listening socket; EPOLLEXCLUSIVE wakes only one of them per event.
  for (int i = 0; i < s->nports; i++) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = TAG_LISTEN | (uint64_t)s->listen_fds[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, s->listen_fds[i], &ev) < 0) die_errno("epoll_ctl listen");
    if (s->udp) {
      struct epoll_event uev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = TAG_UDP | (uint64_t)s->udp_fds[i]};
      if (epoll_ctl(ep, EPOLL_CTL_ADD, s->udp_fds[i], &uev) < 0) die_errno("epoll_ctl udp");
    }
  }
  static __thread char buf[ECHO_BUF];
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die_errno("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      uint64_t d = evs[i].data.u64;
      int fd = (int)(d & 0xffffffffu);
      if (d & TAG_LISTEN) {
        for (;;) {
          int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;  // EAGAIN: another worker took it, or the queue is drained
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)c};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0) close(c);
        }
      } else if (d & TAG_UDP) {
        for (;;) {
          struct sockaddr_storage from;
          socklen_t fl = sizeof(from);
          ssize_t r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
          if (r < 0) break;
          sendto(fd, buf, (size_t)r, MSG_DONTWAIT, (struct sockaddr *)&from, fl);
        }
      } else {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r > 0) {
          write_all(fd, buf, r);
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          close(fd);  // close() also removes it from the epoll set
        }
      }
    }
  }
  return NULL;
}

static int open_listener(const char *bind_ip, int port, int type) {
  struct sockaddr_storage ss;
  socklen_t len = make_addr(bind_ip, port, &ss);
  if (!len) usage_error("--bind must be an IPv4 or IPv6 address, got '%s'", bind_ip);
  int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die_errno("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
    fprintf(stderr, "%s: bind %s:%d (%s): %s\n", prog, bind_ip, port, type == SOCK_STREAM ? "tcp" : "udp",
            strerror(errno));
    exit(1);
  }
  if (type == SOCK_STREAM && listen(fd, LISTEN_BACKLOG) < 0) die_errno("listen");
  return fd;
}

// Starts the echo workers on the listening sockets in *s.
// batch: SCHED_BATCH for the server and every worker it starts (set before they start; threads inherit it).
// When client and server share a CPU, a normal server's wake-up may preempt the client inside its timed
// connect(), and whether it does flips in phases (the scheduler's lag accounting): two modes ~50% apart in
// one run. A batch task never preempts on wake-up (kernel/sched/fair.c, check_preempt_wakeup_fair); it runs
// when the client blocks or at the tick, so the server's work stays outside the client's timed window.
static void start_server_workers(struct server *s, int batch) {
  if (batch) {
    struct sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(0, SCHED_BATCH, &sp) < 0) die_errno("sched_setscheduler (--batch)");
  }
  // One worker per CPU we may run on, up to 8.
  cpu_set_t allowed;
  int ncpu = sched_getaffinity(0, sizeof(allowed), &allowed) == 0 ? CPU_COUNT(&allowed) : 1;
  int workers = ncpu < 1 ? 1 : ncpu > 8 ? 8 : ncpu;
  for (int i = 0; i < workers; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, server_worker, s) != 0) die_errno("pthread_create");
    pthread_detach(t);
  }
}

static int cmd_server(int argc, char **argv) {
  static struct option opts[] = {
      {"port", required_argument, 0, 'p'}, {"bind", required_argument, 0, 'b'}, {"udp", no_argument, 0, 'u'},
      {"cpu", required_argument, 0, 'C'},  {"batch", no_argument, 0, 'B'}, {0, 0, 0, 0}};
  static struct server s;
  int batch = 0;
  int ports[MAX_PORTS];
  const char *bind_ip = "0.0.0.0";
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'p':
        if (s.nports >= MAX_PORTS) usage_error("at most %d --port options", MAX_PORTS);
        ports[s.nports++] = (int)parse_long("port", optarg, 1, 65535);
        break;
      case 'b': bind_ip = optarg; break;
      case 'u': s.udp = 1; break;
      case 'C': add_pin(optarg); break;
      case 'B': batch = 1; break;
      default: usage_error("server: unknown option");
    }
  }
  if (optind < argc) usage_error("server: unexpected argument '%s'", argv[optind]);
  if (s.nports == 0) usage_error("server: at least one --port is required");

  // Block the stop signals in every thread; the main thread collects them with sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  for (int i = 0; i < s.nports; i++) {
    s.listen_fds[i] = open_listener(bind_ip, ports[i], SOCK_STREAM);
    if (s.udp) s.udp_fds[i] = open_listener(bind_ip, ports[i], SOCK_DGRAM);
  }
  apply_pins();
  start_server_workers(&s, batch);
  printf("ready\n");
  fflush(stdout);
  int sig;
  sigwait(&stop, &sig);
  return 0;
}

// ---------------------------------------------------------------------------------------------------- client

enum mode { MODE_CONNECT, MODE_CRR, MODE_RR };

struct client_cfg {
  struct sockaddr_storage addr;
  socklen_t addrlen;
  enum mode mode;
  int timeout_ms;
  pthread_barrier_t warm;  // all workers done warming up
  pthread_barrier_t go;    // the main thread has taken the start readings
};

struct worker {
  struct client_cfg *cfg;
  long warmup, samples;
  uint64_t *out;  // measured latencies
  long nout;
  long errors[ERR_SLOTS];
  int rr_fd;
};

static int count_errno(int e) {
  // A blocking connect cut short by SO_SNDTIMEO reports EINPROGRESS; a read cut short by SO_RCVTIMEO, EAGAIN.
  if (e == EINPROGRESS || e == EAGAIN) return ETIMEDOUT;
  return (e > 0 && e < MAX_ERRNO) ? e : EIO;
}

static int new_socket(struct worker *w) {
  int fd = socket(w->cfg->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  set_timeouts(fd, w->cfg->timeout_ms);
  return fd;
}

// One byte out, one byte back. Returns 0, or an error slot.
static int exchange(int fd) {
  char b = 'x';
  ssize_t r = write(fd, &b, 1);
  if (r != 1) return count_errno(r < 0 ? errno : EIO);
  r = read(fd, &b, 1);
  if (r == 1) return 0;
  return r == 0 ? ERR_EOF : count_errno(errno);
}

// One sample. Returns 0 and sets *lat, or returns an error slot.
static int one_sample(struct worker *w, uint64_t *lat) {
  const struct client_cfg *cfg = w->cfg;
  if (cfg->mode == MODE_RR) {
    if (w->rr_fd < 0) {
      int fd = new_socket(w);
      if (fd < 0) return count_errno(errno);
      if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) < 0) {
        int e = errno;
        close(fd);
        return count_errno(e);
      }
      w->rr_fd = fd;
    }
    uint64_t t0 = mono_ns();
    int err = exchange(w->rr_fd);
    uint64_t t1 = mono_ns();
    if (err) {
      close(w->rr_fd);  // reconnect on the next sample
      w->rr_fd = -1;
      return err;
    }
    *lat = t1 - t0;
    return 0;
  }
  int fd = new_socket(w);
  if (fd < 0) return count_errno(errno);
  uint64_t t0 = mono_ns();
  int rc = connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen);
  int err = rc < 0 ? count_errno(errno) : 0;
  uint64_t t1 = mono_ns();
  if (!err && cfg->mode == MODE_CRR) {
    err = exchange(fd);
    close(fd);
    t1 = mono_ns();
  } else {
    close(fd);
  }
  if (err) return err;
  *lat = t1 - t0;
  return 0;
}

static void *client_worker(void *arg) {
  struct worker *w = arg;
  uint64_t lat;
  for (long i = 0; i < w->warmup; i++) one_sample(w, &lat);  // warmup errors are not reported either
  pthread_barrier_wait(&w->cfg->warm);
  pthread_barrier_wait(&w->cfg->go);
  for (long i = 0; i < w->samples; i++) {
    int err = one_sample(w, &lat);
    if (err) w->errors[err]++;
    else w->out[w->nout++] = lat;
  }
  if (w->rr_fd >= 0) close(w->rr_fd);
  return NULL;
}

static void print_errors(const long *errors) {
  printf("{");
  int first = 1;
  for (int e = 1; e < ERR_SLOTS; e++) {
    if (!errors[e]) continue;
    printf(first ? "\"%s\":%ld" : ",\"%s\":%ld", err_name(e), errors[e]);
    first = 0;
  }
  printf("}");
}

// The machine's reference (issue 20): the same operation over the client pod's loopback, against an echo server
// forked from this process (same CPU placement, SCHED_BATCH when asked, as the real server is when it shares the
// client's CPU). No data plane is on that path — no veth, no route, no rule: the pod's own namespace has none —
// so it moves when the machine does (a slower vCPU, a task competing for the pinned CPU) and not when the data
// plane does. One worker, after the measured window, so the CPU accounting above does not include it.
static pid_t start_reference_server(int batch, struct sockaddr_storage *addr, socklen_t *addrlen) {
  int fd = open_listener("127.0.0.1", 0, SOCK_STREAM);
  *addrlen = sizeof(*addr);
  if (getsockname(fd, (struct sockaddr *)addr, addrlen) < 0) die_errno("getsockname (reference server)");
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die_errno("fork (reference server)");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    static struct server rs;
    rs.listen_fds[0] = fd;
    rs.nports = 1;
    start_server_workers(&rs, batch);
    for (;;) pause();
  }
  close(fd);
  return pid;
}

//
// A socket-level Service load balancer (Cilium's socket LB, Calico's CTLB) hooks connect() of every socket created
// in its cgroup, the one the client is started in; its program would run on each of the reference's connects too.
// With --reference-cgroup-fd the harness hands over an open `cgroup.procs` of a cgroup outside the hooked one (the
// harness opens it: the cgroup filesystem is not visible inside `ip netns exec`); the process moves there, with its
// threads, before the reference's server is forked and its first socket is made (a socket belongs to the cgroup
// of the task that creates it), and stays on the same CPUs (no cpuset controller is involved). The data plane's
// programs' run count over the reference is printed beside it: 0 when no data plane ran on its path.
static void move_to_cgroup(int procs_fd) {
  if (procs_fd < 0) return;
  if (write(procs_fd, "0\n", 2) != 2) die_errno("move to the reference cgroup (write 0 to the --reference-cgroup-fd)");
  close(procs_fd);
}

static void run_reference(const struct client_cfg *cfg, long warmup, long samples, int batch, int cgroup_fd, struct account *acct) {
  static struct client_cfg rcfg;
  rcfg = *cfg;
  move_to_cgroup(cgroup_fd);
  struct account_reading b0, b1;
  account_read(acct, &b0);
  pid_t server = start_reference_server(batch, &rcfg.addr, &rcfg.addrlen);
  static struct worker w;
  w.cfg = &rcfg;
  w.rr_fd = -1;
  w.out = malloc((size_t)(samples ? samples : 1) * sizeof(uint64_t));
  if (!w.out) die_errno("malloc");
  uint64_t lat;
  for (long i = 0; i < warmup; i++) one_sample(&w, &lat);
  uint64_t t0 = mono_ns();
  for (long i = 0; i < samples; i++) {
    int err = one_sample(&w, &lat);
    if (err) w.errors[err]++;
    else w.out[w.nout++] = lat;
  }
  uint64_t t1 = mono_ns();
  if (w.rr_fd >= 0) close(w.rr_fd);
  kill(server, SIGKILL);
  waitpid(server, NULL, 0);
  account_read(acct, &b1);
  printf(",\"reference\":{\"target\":\"loopback\",\"moved\":%s", cgroup_fd >= 0 ? "true" : "false");
  if (acct->nprogs > 0 && acct->stats_fd >= 0) printf(",\"bpf_run_cnt\":%llu", (unsigned long long)(b1.bpf_run_cnt - b0.bpf_run_cnt));
  printf(",\"samples_ns\":[");
  for (long j = 0; j < w.nout; j++) printf(j ? ",%llu" : "%llu", (unsigned long long)w.out[j]);
  printf("],\"errors\":");
  print_errors(w.errors);
  printf(",\"wall_ns\":%llu}", (unsigned long long)(t1 - t0));
  free(w.out);
}

static int cmd_client(int argc, char **argv) {
  static struct option opts[] = {{"target", required_argument, 0, 't'},  {"port", required_argument, 0, 'p'},
                                 {"mode", required_argument, 0, 'm'},    {"samples", required_argument, 0, 'n'},
                                 {"warmup", required_argument, 0, 'w'},  {"concurrency", required_argument, 0, 'c'},
                                 {"timeout-ms", required_argument, 0, 'T'}, {"cpu", required_argument, 0, 'C'},
                                 {"account", required_argument, 0, 'A'}, {"bpf-prog", required_argument, 0, 'P'},
                                 {"reference", required_argument, 0, 'r'}, {"reference-warmup", required_argument, 0, 'R'},
                                 {"reference-batch", no_argument, 0, 'B'}, {"reference-cgroup-fd", required_argument, 0, 'G'},
                                 {0, 0, 0, 0}};
  const char *target = NULL, *mode = NULL;
  long port = -1, samples = -1, warmup = 0, conc = 1, timeout_ms = 1000, ref_samples = 0, ref_warmup = 0;
  int ref_batch = 0, ref_cgroup_fd = -1;
  static struct account acct;
  account_init(&acct);
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 't': target = optarg; break;
      case 'p': port = parse_long("port", optarg, 1, 65535); break;
      case 'm': mode = optarg; break;
      case 'n': samples = parse_long("samples", optarg, 1, 100000000); break;
      case 'w': warmup = parse_long("warmup", optarg, 0, 100000000); break;
      case 'c': conc = parse_long("concurrency", optarg, 1, 1024); break;
      case 'T': timeout_ms = parse_long("timeout-ms", optarg, 1, 3600000); break;
      case 'C': add_pin(optarg); break;
      case 'A':
        if (account_add_pid(&acct, parse_long("account", optarg, 1, INT_MAX)) < 0) usage_error("at most %d --account options", ACCOUNT_MAX_PIDS);
        break;
      case 'P':
        if (account_add_prog(&acct, parse_long("bpf-prog", optarg, 1, UINT32_MAX)) < 0) usage_error("at most %d --bpf-prog options", ACCOUNT_MAX_PROGS);
        break;
      case 'r': ref_samples = parse_long("reference", optarg, 0, 10000000); break;
      case 'R': ref_warmup = parse_long("reference-warmup", optarg, 0, 10000000); break;
      case 'B': ref_batch = 1; break;
      case 'G': ref_cgroup_fd = (int)parse_long("reference-cgroup-fd", optarg, 3, 1023); break;
      default: usage_error("client: unknown option");
    }
  }
  if (optind < argc) usage_error("client: unexpected argument '%s'", argv[optind]);
  if (!target) usage_error("client: --target is required");
  if (port < 0) usage_error("client: --port is required");
  if (!mode) usage_error("client: --mode is required (connect, crr or rr)");
  if (samples < 0) usage_error("client: --samples is required");

  static struct client_cfg cfg;
  cfg.addrlen = make_addr(target, (int)port, &cfg.addr);
  if (!cfg.addrlen) usage_error("client: --target must be an IPv4 or IPv6 address, got '%s'", target);
  if (!strcmp(mode, "connect")) cfg.mode = MODE_CONNECT;
  else if (!strcmp(mode, "crr")) cfg.mode = MODE_CRR;
  else if (!strcmp(mode, "rr")) cfg.mode = MODE_RR;
  else usage_error("client: --mode must be connect, crr or rr, got '%s'", mode);
  cfg.timeout_ms = (int)timeout_ms;
  signal(SIGPIPE, SIG_IGN);
  apply_pins();
  // Before the warm-up: turning BPF statistics on patches kernel code (a static key), which must not land in
  // the window.
  account_open(&acct);

  int n = (int)conc;
  struct worker *ws = calloc((size_t)n, sizeof(*ws));
  pthread_t *ts = calloc((size_t)n, sizeof(*ts));
  if (!ws || !ts) die_errno("calloc");
  pthread_barrier_init(&cfg.warm, NULL, (unsigned)n + 1);
  pthread_barrier_init(&cfg.go, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    ws[i].cfg = &cfg;
    ws[i].samples = samples / n + (i < samples % n ? 1 : 0);
    ws[i].warmup = warmup / n + (i < warmup % n ? 1 : 0);
    ws[i].rr_fd = -1;
    ws[i].out = malloc((size_t)(ws[i].samples ? ws[i].samples : 1) * sizeof(uint64_t));
    if (!ws[i].out) die_errno("malloc");
    if (pthread_create(&ts[i], NULL, client_worker, &ws[i]) != 0) die_errno("pthread_create");
  }
  pthread_barrier_wait(&cfg.warm);
  struct rusage ru0, ru1;
  struct account_reading ar0, ar1;
  account_settle(&acct);
  getrusage(RUSAGE_SELF, &ru0);
  uint64_t c0 = mono_ns();
  account_read(&acct, &ar0);
  // Monotonic, the clock of Node's process.hrtime.bigint(), so the harness can line the window up with its samplers.
  uint64_t t0 = mono_ns();
  pthread_barrier_wait(&cfg.go);
  for (int i = 0; i < n; i++) pthread_join(ts[i], NULL);
  uint64_t t1 = mono_ns();
  account_settle(&acct);
  account_read(&acct, &ar1);
  uint64_t c1 = mono_ns();
  getrusage(RUSAGE_SELF, &ru1);

  static char outbuf[1 << 20];
  setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
  printf("{\"mode\":\"%s\",\"concurrency\":%d,\"samples_ns\":[", mode, n);
  int first = 1;
  for (int i = 0; i < n; i++)
    for (long j = 0; j < ws[i].nout; j++) {
      printf(first ? "%llu" : ",%llu", (unsigned long long)ws[i].out[j]);
      first = 0;
    }
  printf("],\"errors\":");
  static long errors[ERR_SLOTS];
  for (int e = 1; e < ERR_SLOTS; e++)
    for (int i = 0; i < n; i++) errors[e] += ws[i].errors[e];
  print_errors(errors);
  printf(",\"wall_ns\":%llu,\"cpu_user_ns\":%llu,\"cpu_sys_ns\":%llu,\"started_ns\":%llu,\"ended_ns\":%llu",
         (unsigned long long)(t1 - t0), (unsigned long long)(tv_ns(ru1.ru_utime) - tv_ns(ru0.ru_utime)),
         (unsigned long long)(tv_ns(ru1.ru_stime) - tv_ns(ru0.ru_stime)), (unsigned long long)t0,
         (unsigned long long)t1);
  account_print(stdout, &acct, &ar0, &ar1);
  // The CPU readings' own window: the loop, the server's backlog after it, and the reads.
  printf(",\"cpu_window_ns\":%llu", (unsigned long long)(c1 - c0));
  if (ref_samples > 0) run_reference(&cfg, ref_warmup, ref_samples, ref_batch, ref_cgroup_fd, &acct);
  account_close(&acct);
  printf("}\n");
  if (fflush(stdout) != 0) die_errno("write stdout");
  return 0;
}

// ---------------------------------------------------------------------------------------------------- check

static int check_result(int err) {
  if (err == 0) {
    printf("open\n");
    return 0;
  }
  printf("%s %s\n", err == ETIMEDOUT ? "timeout" : err == ECONNREFUSED ? "refused" : "failed", err_name(err));
  return 1;
}

static int cmd_check(int argc, char **argv) {
  static struct option opts[] = {{"target", required_argument, 0, 't'},
                                 {"port", required_argument, 0, 'p'},
                                 {"udp", no_argument, 0, 'u'},
                                 {"timeout-ms", required_argument, 0, 'T'},
                                 {0, 0, 0, 0}};
  const char *target = NULL;
  long port = -1, timeout_ms = 1000;
  int udp = 0, c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 't': target = optarg; break;
      case 'p': port = parse_long("port", optarg, 1, 65535); break;
      case 'u': udp = 1; break;
      case 'T': timeout_ms = parse_long("timeout-ms", optarg, 1, 3600000); break;
      default: usage_error("check: unknown option");
    }
  }
  if (optind < argc) usage_error("check: unexpected argument '%s'", argv[optind]);
  if (!target) usage_error("check: --target is required");
  if (port < 0) usage_error("check: --port is required");
  struct sockaddr_storage ss;
  socklen_t len = make_addr(target, (int)port, &ss);
  if (!len) usage_error("check: --target must be an IPv4 or IPv6 address, got '%s'", target);
  signal(SIGPIPE, SIG_IGN);

  int fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) die_errno("socket");
  if (!udp) {
    set_timeouts(fd, (int)timeout_ms);
    int rc = connect(fd, (struct sockaddr *)&ss, len);
    return check_result(rc < 0 ? count_errno(errno) : 0);
  }
  // UDP: a connected socket so an ICMP port-unreachable surfaces as ECONNREFUSED instead of silence.
  if (connect(fd, (struct sockaddr *)&ss, len) < 0) return check_result(count_errno(errno));
  char b = 'c';
  if (send(fd, &b, 1, 0) < 0) return check_result(count_errno(errno));
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int pr = poll(&p, 1, (int)timeout_ms);
  if (pr == 0) return check_result(ETIMEDOUT);
  if (pr < 0) die_errno("poll");
  ssize_t r = recv(fd, &b, 1, 0);
  return check_result(r == 1 ? 0 : r < 0 ? count_errno(errno) : EIO);
}


// ---------------------------------------------------------------------------------------------------- watch
//
// Time to enforcement (issue 15). A new non-blocking TCP connect starts every --interval-us on a fixed schedule,
// each with its own --timeout-ms, so many are in flight at once: an accepted SYN is seen within a round trip, a
// dropped one only at its timeout, but either way the verdict belongs to the probe's *start*, and starts are
// --interval-us apart. The moment the verdict flips is therefore bracketed by two consecutive starts, whatever
// the timeout. Every probe's start and end are CLOCK_MONOTONIC (Node's process.hrtime.bigint()), printed as
// offsets from base_ns. The first stdout line, "watching <base_ns>", says probing has begun; the JSON follows at
// the end. SIGTERM/SIGINT stop new probes; the ones in flight finish (at most --timeout-ms) and are reported.
//
// --control-stdin (kind/cluster, where the watch runs in a pod behind `kubectl exec -i` and signals do not reach
// it): each line "mark" read from stdin is timestamped on the probes' clock and echoed at once as
// "mark <i> <ns>" (ns after base_ns), so the harness can place the moment it issued a change on this clock, within
// the round trip it sees; a line "stop", or EOF on stdin, stops new probes like SIGTERM. The marks are also in the
// JSON as marks_ns.
#define WATCH_MAX_MARKS 4096
#define WATCH_STDIN UINT64_MAX - 1

#define WATCH_OPEN 0
static volatile sig_atomic_t watch_stop;
static void on_watch_stop(int sig) {
  (void)sig;
  watch_stop = 1;
}

struct wprobe {
  uint64_t start, end;
  int fd;
  int result;  // -1 in flight, WATCH_OPEN, or an errno
};

static int cmd_watch(int argc, char **argv) {
  static struct option opts[] = {{"target", required_argument, 0, 't'},     {"port", required_argument, 0, 'p'},
                                 {"interval-us", required_argument, 0, 'i'}, {"timeout-ms", required_argument, 0, 'T'},
                                 {"max-ms", required_argument, 0, 'D'},      {"until", required_argument, 0, 'U'},
                                 {"settle", required_argument, 0, 'S'},      {"cpu", required_argument, 0, 'C'},
                                 {"realtime", no_argument, 0, 'R'},          {"control-stdin", no_argument, 0, 'I'},
                                 {0, 0, 0, 0}};
  const char *target = NULL, *until = NULL;
  int realtime = 0, control = 0;
  long port = -1, interval_us = 1000, timeout_ms = 20, max_ms = 10000, settle = 5;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 't': target = optarg; break;
      case 'p': port = parse_long("port", optarg, 1, 65535); break;
      case 'i': interval_us = parse_long("interval-us", optarg, 50, 1000000); break;
      case 'T': timeout_ms = parse_long("timeout-ms", optarg, 1, 60000); break;
      case 'D': max_ms = parse_long("max-ms", optarg, 1, 3600000); break;
      case 'U': until = optarg; break;
      case 'S': settle = parse_long("settle", optarg, 1, 100000); break;
      case 'C': add_pin(optarg); break;
      case 'R': realtime = 1; break;
      case 'I': control = 1; break;
      default: usage_error("watch: unknown option");
    }
  }
  if (optind < argc) usage_error("watch: unexpected argument '%s'", argv[optind]);
  if (!target) usage_error("watch: --target is required");
  if (port < 0) usage_error("watch: --port is required");
  int until_open = -1;
  if (until) {
    if (!strcmp(until, "open")) until_open = 1;
    else if (!strcmp(until, "closed")) until_open = 0;
    else usage_error("watch: --until must be open or closed, got '%s'", until);
  }
  struct sockaddr_storage ss;
  socklen_t len = make_addr(target, (int)port, &ss);
  if (!len) usage_error("watch: --target must be an IPv4 or IPv6 address, got '%s'", target);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {0};
  sa.sa_handler = on_watch_stop;  // no SA_RESTART: epoll_wait returns EINTR
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  apply_pins();
  // --realtime: SCHED_FIFO so the schedule of starts holds while the agent's processes load the CPUs; the watch
  // sleeps between starts, so it takes little CPU. Without the privilege it runs as usual and says so.
  int rt = 0;
  if (realtime) {
    struct sched_param sp = {.sched_priority = 10};
    rt = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
  }

  long cap = (long)((max_ms * 1000) / interval_us) + 2;
  struct wprobe *pr = calloc((size_t)cap, sizeof(*pr));
  if (!pr) die_errno("calloc");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (ep < 0 || tfd < 0) die_errno("epoll/timerfd");
  struct epoll_event tev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) < 0) die_errno("epoll_ctl timerfd");
  static uint64_t marks[WATCH_MAX_MARKS];
  long nmarks = 0;
  char cbuf[256];
  size_t clen = 0;
  if (control) {
    struct epoll_event sev = {.events = EPOLLIN, .data.u64 = WATCH_STDIN};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev) < 0) die_errno("epoll_ctl stdin");
  }

  const uint64_t interval = (uint64_t)interval_us * 1000ull, timeout = (uint64_t)timeout_ms * 1000000ull;
  uint64_t base = mono_ns();
  printf("watching %llu\n", (unsigned long long)base);
  fflush(stdout);
  long started = 0, oldest = 0, settled_at = -1;  // oldest: first probe that may still be in flight
  uint64_t next_start = base;
  int launching = 1;
  struct linger lg = {.l_onoff = 1, .l_linger = 0};  // RST on close: thousands of probes leave no TIME_WAIT
  for (;;) {
    uint64_t now = mono_ns();
    if (launching && (watch_stop || started >= cap || now - base >= (uint64_t)max_ms * 1000000ull)) launching = 0;
    // At most one launch per turn of the loop, so expiries, the stop condition and --max-ms are checked between
    // launches. A connect that itself takes longer than the interval (the SYN crosses the data plane inside the
    // syscall on a veth) makes the schedule slip: the next start is then "now", never a burst of missed ones,
    // and the real start times (and so the cadence achieved) are what gets reported.
    if (launching && started < cap && next_start <= now) {
      struct wprobe *p = &pr[started++];
      p->result = -1;
      p->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      p->start = mono_ns();
      next_start += interval;
      if (next_start < p->start) next_start = p->start;
      if (p->fd < 0) {
        p->result = count_errno(errno);
        p->end = p->start;
      } else {
        setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        int rc = connect(p->fd, (struct sockaddr *)&ss, len);
        if (rc == 0 || errno != EINPROGRESS) {
          p->end = mono_ns();
          p->result = rc == 0 ? WATCH_OPEN : count_errno(errno);
          close(p->fd);
        } else {
          struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)(started - 1)};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev) < 0) die_errno("epoll_ctl probe");
        }
      }
    }
    // Expire timed-out probes, oldest first (same timeout for all, so start order is deadline order).
    now = mono_ns();
    while (oldest < started && (pr[oldest].result != -1 || now >= pr[oldest].start + timeout)) {
      if (pr[oldest].result == -1) {
        pr[oldest].result = ETIMEDOUT;
        pr[oldest].end = now;
        close(pr[oldest].fd);
      }
      oldest++;
    }
    // The stop condition: --settle consecutive probes (in start order) all with the wanted verdict.
    if (until_open >= 0 && settled_at < 0) {
      long run = 0;
      for (long i = 0; i < started && pr[i].result != -1; i++) {
        run = ((pr[i].result == WATCH_OPEN) == until_open) ? run + 1 : 0;
        if (run >= settle) {
          settled_at = i;
          launching = 0;
          break;
        }
      }
    }
    if (!launching && oldest >= started) break;
    // Sleep until the next start or the oldest deadline, whichever is first, unless a connect completes.
    uint64_t wake = UINT64_MAX;
    if (launching) wake = next_start;
    if (oldest < started && pr[oldest].start + timeout < wake) wake = pr[oldest].start + timeout;
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(wake / 1000000000ull);
    its.it_value.tv_nsec = (long)(wake % 1000000000ull);
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die_errno("timerfd_settime");
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) die_errno("epoll_wait");
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u64 == UINT64_MAX) {
        uint64_t exp;
        ssize_t r = read(tfd, &exp, sizeof(exp));
        (void)r;
        continue;
      }
      if (evs[i].data.u64 == WATCH_STDIN) {
        uint64_t at = mono_ns();  // before the read: the line was there when epoll said so
        ssize_t r = read(0, cbuf + clen, sizeof(cbuf) - 1 - clen);
        if (r <= 0) {
          if (r < 0 && errno == EINTR) continue;
          watch_stop = 1;  // EOF (the harness went away) or an error: stop like SIGTERM
          epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
          continue;
        }
        clen += (size_t)r;
        char *nl;
        while ((nl = memchr(cbuf, '\n', clen))) {
          *nl = '\0';
          if (!strcmp(cbuf, "mark") && nmarks < WATCH_MAX_MARKS) {
            marks[nmarks] = at;
            printf("mark %ld %llu\n", nmarks, (unsigned long long)(at - base));
            fflush(stdout);
            nmarks++;
          } else if (!strcmp(cbuf, "stop")) {
            watch_stop = 1;
          }
          size_t used = (size_t)(nl - cbuf) + 1;
          memmove(cbuf, nl + 1, clen - used);
          clen -= used;
        }
        if (clen == sizeof(cbuf) - 1) clen = 0;  // an overlong line: dropped
        continue;
      }
      struct wprobe *p = &pr[evs[i].data.u64];
      if (p->result != -1) continue;
      int err = 0;
      socklen_t el = sizeof(err);
      getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el);
      p->end = mono_ns();
      p->result = err == 0 ? WATCH_OPEN : count_errno(err);
      close(p->fd);  // also leaves the epoll set
    }
  }

  static char outbuf[1 << 20];
  setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
  printf("{\"mode\":\"watch\",\"base_ns\":\"%llu\",\"interval_ns\":%llu,\"timeout_ns\":%llu,\"settled_index\":%ld,\"realtime\":%s,",
         (unsigned long long)base, (unsigned long long)interval, (unsigned long long)timeout, settled_at, rt ? "true" : "false");
  printf("\"start_ns\":[");
  for (long i = 0; i < started; i++) printf(i ? ",%llu" : "%llu", (unsigned long long)(pr[i].start - base));
  printf("],\"end_ns\":[");
  for (long i = 0; i < started; i++) printf(i ? ",%llu" : "%llu", (unsigned long long)(pr[i].end - base));
  printf("],\"result\":[");
  for (long i = 0; i < started; i++) printf(i ? ",\"%s\"" : "\"%s\"", pr[i].result == WATCH_OPEN ? "open" : err_name(pr[i].result));
  if (control) {
    printf("],\"marks_ns\":[");
    for (long i = 0; i < nmarks; i++) printf(i ? ",%llu" : "%llu", (unsigned long long)(marks[i] - base));
  }
  printf("]}\n");
  if (fflush(stdout) != 0) die_errno("write stdout");
  return 0;
}

int main(int argc, char **argv) {
  // Die with the parent (the Node harness) even if it is SIGKILLed and cannot clean up; the server collects the
  // SIGTERM like any stop request. A server left up by `bench run --keep` is started with CB_PROBE_DETACHED=1
  // and outlives the harness on purpose (`bench gc` stops it).
  if (!getenv("CB_PROBE_DETACHED")) prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (argc < 2) usage_error("missing subcommand (server, client, check, watch or bpf-progs)");
  const char *sub = argv[1];
  // getopt_long sees the subcommand as argv[0].
  if (!strcmp(sub, "server")) return cmd_server(argc - 1, argv + 1);
  if (!strcmp(sub, "client")) return cmd_client(argc - 1, argv + 1);
  if (!strcmp(sub, "check")) return cmd_check(argc - 1, argv + 1);
  if (!strcmp(sub, "watch")) return cmd_watch(argc - 1, argv + 1);
  if (!strcmp(sub, "bpf-progs")) return cmd_bpf_progs(argc - 1, argv + 1);
  if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
    fputs(usage_text, stdout);
    return 0;
  }
  usage_error("unknown subcommand '%s' (server, client, check, watch or bpf-progs)", sub);
  return 2;
}
