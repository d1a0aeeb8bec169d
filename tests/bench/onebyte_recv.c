/* onebyte_recv.c: LD_PRELOAD shim for the linearity benchmark (scripts/bench.sh builds it
 * with cc -shared). Every recv() returns at most one byte, so the whole client (transport,
 * llhttp, SSE parser, binding) sees a stream that arrives one byte per read, which loopback
 * TCP never produces by itself. Not part of lev-http. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/types.h>

ssize_t recv(int fd, void *buf, size_t len, int flags) {
  static ssize_t (*real)(int, void *, size_t, int);
  if (!real) real = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
  return real(fd, buf, len > 1 ? 1 : len, flags);
}
