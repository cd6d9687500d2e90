/*
 * secret.h - reading the MQTT password (SPEC §3 mqtt.password_file, or systemd's
 * $CREDENTIALS_DIRECTORY/mqtt.secret from LoadCredential=). Shared by enpid and by
 * `enpi import`, which publishes with the daemon's broker credentials.
 */
#ifndef ENPI_SECRET_H
#define ENPI_SECRET_H

#include <stddef.h>

#define ENPI_SECRET_MAX 4096 /* bytes of a password file */

/*
 * Reads the password from `configured` (a path, or NULL: $CREDENTIALS_DIRECTORY/mqtt.secret
 * when that file exists, else no password). One trailing newline (LF or CRLF) is dropped.
 * *out is NULL when there is no password; otherwise malloc'd, owned by the caller, who
 * wipes it with enpi_secret_free. Returns 0, ENPI_EIO (unreadable, too long, contains a
 * NUL byte; err says which and names the path, never the content) or ENPI_ENOMEM.
 */
int enpi_secret_read_password(const char *configured, char **out, char *err, size_t errlen);

/* Overwrites and frees a password from enpi_secret_read_password (NULL is fine). */
void enpi_secret_free(char *password);

#endif
