/*
 * secret.c - the MQTT password from a file or a systemd credential. See secret.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enpi_error.h"
#include "secret.h"

int enpi_secret_read_password(const char *configured, char **out, char *err, size_t errlen)
{
    char path_buf[4096];
    const char *path = configured;
    int rc = 0;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (path == NULL) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (dir == NULL || *dir == '\0')
            return 0;
        int n = snprintf(path_buf, sizeof path_buf, "%s/mqtt.secret", dir);
        if (n < 0 || (size_t)n >= sizeof path_buf)
            return 0;
        if (access(path_buf, F_OK) != 0)
            return 0; /* optional: no credential given */
        path = path_buf;
    }
    /* read(2), not stdio: no library buffer keeps a copy of the secret. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read password file %s: %s", path, strerror(errno));
        return ENPI_EIO;
    }
    char *buf = malloc(ENPI_SECRET_MAX + 2);
    if (buf == NULL) {
        snprintf(err, errlen, "password file %s: out of memory", path);
        rc = ENPI_ENOMEM;
        goto close_file;
    }
    size_t len = 0;
    int read_errno = 0;
    while (len <= ENPI_SECRET_MAX) {
        ssize_t n = read(fd, buf + len, ENPI_SECRET_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            read_errno = errno;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (read_errno != 0 || len > ENPI_SECRET_MAX) {
        snprintf(err, errlen, "password file %s: %s", path,
                 read_errno ? strerror(read_errno) : "longer than 4096 bytes");
        rc = ENPI_EIO;
        goto wipe_buf;
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        snprintf(err, errlen, "password file %s contains a NUL byte", path);
        rc = ENPI_EIO;
        goto wipe_buf;
    }
    *out = buf;
    goto close_file;
wipe_buf:
    explicit_bzero(buf, ENPI_SECRET_MAX + 2);
    free(buf);
close_file:
    close(fd);
    return rc;
}

void enpi_secret_free(char *password)
{
    if (password == NULL)
        return;
    explicit_bzero(password, strlen(password));
    free(password);
}
