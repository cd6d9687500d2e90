/*
 * enospc_shim.c - an LD_PRELOAD library for the fault tests: makes RocksDB's writes to a
 * store fail with ENOSPC, as a full disk would, while a control file exists.
 *
 * Environment: ENOSPC_SHIM_DIR names the store folder; ENOSPC_SHIM_CONTROL names the
 * control file. While the control file exists, write, pwrite, fallocate,
 * posix_fallocate, fsync and fdatasync on a file inside the store
 * folder fail with ENOSPC, except files under its inbox/ subfolder (enpid's own segment
 * log, which the test fills for real). Creating files still works, as it mostly does on
 * a full disk. Everything else goes straight to libc. Test code only; not installed.
 *
 * DESIGN: any thread; the checks read only the environment (cached once) and the
 * file system (access, readlink of /proc/self/fd), so they need no locking.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static const char *store_dir(size_t *len)
{
    static const char *dir;
    static size_t dir_len;
    if (!dir) {
        const char *d = getenv("ENOSPC_SHIM_DIR");
        dir_len = d ? strlen(d) : 0;
        dir = d ? d : "";
    }
    *len = dir_len;
    return dir;
}

static bool fault_on(void)
{
    const char *ctl = getenv("ENOSPC_SHIM_CONTROL");
    return ctl && *ctl && access(ctl, F_OK) == 0;
}

/* True for a path inside the store folder but not in its inbox/ subfolder. */
static bool path_targeted(const char *path)
{
    size_t n;
    const char *dir = store_dir(&n);
    if (n == 0 || strncmp(path, dir, n) != 0 || path[n] != '/')
        return false;
    return strncmp(path + n + 1, "inbox/", 6) != 0 && strcmp(path + n + 1, "inbox") != 0;
}

static bool fd_targeted(int fd)
{
    if (!fault_on())
        return false;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return false;
    path[n] = '\0';
    return path_targeted(path);
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

ssize_t write(int fd, const void *buf, size_t count)
{
    if (fd > 2 && fd_targeted(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return REAL(write)(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off)
{
    if (fd_targeted(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return REAL(pwrite)(fd, buf, count, off);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    if (fd_targeted(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return REAL(fallocate)(fd, mode, off, len);
}

int posix_fallocate(int fd, off_t off, off_t len)
{
    if (fd_targeted(fd))
        return ENOSPC;
    return REAL(posix_fallocate)(fd, off, len);
}

int fsync(int fd)
{
    if (fd_targeted(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    if (fd_targeted(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return REAL(fdatasync)(fd);
}
