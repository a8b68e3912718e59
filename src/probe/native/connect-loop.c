// connect-loop IP PORT N: the floor. N times: socket, blocking connect (timed), close; prints the median in ns.
// Deliberately nothing else, so cb-probe's connect latency can be read against it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: connect-loop IP PORT N\n");
    return 2;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  long n = atol(argv[3]);
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || n < 1) {
    fprintf(stderr, "connect-loop: bad IP or N\n");
    return 2;
  }
  uint64_t *t = malloc((size_t)n * sizeof(*t));
  if (!t) return 1;
  for (long i = 0; i < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      perror("socket");
      return 1;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (rc < 0) {
      perror("connect");
      return 1;
    }
    close(fd);
    t[i] = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)(b.tv_nsec - a.tv_nsec);
  }
  qsort(t, (size_t)n, sizeof(*t), cmp);
  printf("%llu\n", (unsigned long long)t[n / 2]);
  return 0;
}
