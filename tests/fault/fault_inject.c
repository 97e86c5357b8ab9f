// LD_PRELOAD fault injector: makes writes under one directory fail with ENOSPC (a full
// file system) or EIO (a failing disk), switched on and off while the process runs.
//
// Why a preload and not a small tmpfs / loop mount: it needs no root or mount rights
// (CI runs unprivileged), it can fail fsync with EIO (which no healthy file system
// does on demand), it is exact (the test decides the moment, not the fill level), and
// "space returns" is one byte flipped, with the process still running.
//
// Control: KAIZEN_FAULT_CTL names a small file, read on each call. Byte 0 is
// the mode: '0' off, 'S' ENOSPC on write/fallocate, 'E' EIO on write and sync. From
// byte 1: a NUL-terminated absolute path prefix; only files whose path starts with it
// fail. The test rewrites the prefix first and the mode byte last. Faults touch nothing
// else (stdout, stderr, sockets, other directories keep working).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static int ctl_fd = -2;  // -2 not opened yet, -1 unavailable
static char prefix[4096];

// The current mode, read from the control file on every call (one pread: no mapping, so a
// control file truncated or rewritten under us cannot fault this process).
static char mode(void) {
  if (ctl_fd == -2) {
    const char* path = getenv("KAIZEN_FAULT_CTL");
    ctl_fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  }
  char m = '0';
  if (ctl_fd < 0 || pread(ctl_fd, &m, 1, 0) != 1) return '0';
  if (m == '0') return m;
  ssize_t n = pread(ctl_fd, prefix, sizeof prefix - 1, 1);
  prefix[n > 0 ? n : 0] = 0;
  return m;
}

// Whether `path` lies under the prefix mode() last read.
static int under_prefix(const char* path) {
  size_t n = strlen(prefix);
  return n > 0 && path && strncmp(path, prefix, n) == 0;
}

static int fd_under_prefix(int fd) {
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = 0;
  return under_prefix(path);
}

// The errno a write-like call on `fd` gets, or 0 to let it through.
static int write_fault(int fd) {
  char m = mode();
  if (m != 'S' && m != 'E') return 0;
  if (!fd_under_prefix(fd)) return 0;
  return m == 'S' ? ENOSPC : EIO;
}

static int sync_fault(int fd) {
  if (mode() != 'E') return 0;
  return fd_under_prefix(fd) ? EIO : 0;
}

// The next definition of `name` (libc's), looked up once.
#define REAL(name)                                                              \
  ({                                                                            \
    static __typeof__(&name) real_##name;                                       \
    if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name); \
    real_##name;                                                                \
  })

ssize_t write(int fd, const void* buf, size_t n) {
  int e = write_fault(fd);
  if (e) {
    errno = e;
    return -1;
  }
  return REAL(write)(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  int e = write_fault(fd);
  if (e) {
    errno = e;
    return -1;
  }
  return REAL(pwrite)(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  int e = write_fault(fd);
  if (e) {
    errno = e;
    return -1;
  }
  return REAL(pwrite64)(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  int e = write_fault(fd);
  if (e) {
    errno = e;
    return -1;
  }
  return REAL(writev)(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec* iov, int cnt, off_t off) {
  int e = write_fault(fd);
  if (e) {
    errno = e;
    return -1;
  }
  return REAL(pwritev)(fd, iov, cnt, off);
}

int fallocate(int fd, int m, off_t off, off_t len) {
  int e = write_fault(fd);
  if (e) {
    errno = e;
    return -1;
  }
  return REAL(fallocate)(fd, m, off, len);
}

int fallocate64(int fd, int m, off64_t off, off64_t len) {
  int e = write_fault(fd);
  if (e) {
    errno = e;
    return -1;
  }
  return REAL(fallocate64)(fd, m, off, len);
}

int posix_fallocate(int fd, off_t off, off_t len) {
  int e = write_fault(fd);
  if (e) return e;  // returns the error, errno untouched
  return REAL(posix_fallocate)(fd, off, len);
}

int fsync(int fd) {
  int e = sync_fault(fd);
  if (e) {
    errno = e;
    return -1;
  }
  return REAL(fsync)(fd);
}

int fdatasync(int fd) {
  int e = sync_fault(fd);
  if (e) {
    errno = e;
    return -1;
  }
  return REAL(fdatasync)(fd);
}

int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) {
  int e = sync_fault(fd);
  if (e) {
    errno = e;
    return -1;
  }
  return REAL(sync_file_range)(fd, off, n, flags);
}

int mkdir(const char* path, mode_t m) {
  if (mode() == 'S' && under_prefix(path)) {  // a full file system has no block for it
    errno = ENOSPC;
    return -1;
  }
  return REAL(mkdir)(path, m);
}
