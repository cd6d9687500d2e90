/*
 * mqtt_tls_diag.c - why a TLS connect to the broker failed, in OpenSSL's words.
 *
 * Paho reports a failed TLS connect as "TCP/TLS connect failure", with at best OpenSSL's
 * "certificate verify failed" and nothing at all for a host name mismatch (its own check
 * after the handshake). So after such a failure the reconnect thread (mqtt_reconnect.c)
 * makes one TLS handshake of its own to the broker with the same CA, client certificate
 * and host name, and logs what OpenSSL says: "certificate has expired", "hostname
 * mismatch", "unable to get local issuer certificate", the broker's alert when it wants a
 * client certificate... It runs on the first TLS failure after a start or a connection,
 * then at most every DIAG_EVERY_MS, each step bounded by DIAG_TIMEOUT_MS. enpid links
 * OpenSSL anyway (Paho's TLS library); nothing here touches Paho's connection.
 *
 * DESIGN: runs on the reconnect thread only, without rc_mu except to publish its socket
 * in rc_diag_fd, which enpid_mqtt_reconnect_stop() shuts down so that a blocking connect
 * or handshake returns at once when enpid stops.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include "mqtt_int.h"

/* Splits ssl://host:port (or [v6]:port) into host and port (default 8883). Returns false
 * for what it cannot diagnose (websockets). */
static bool split_uri(const char *uri, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *p = strstr(uri, "://");
    if (p == NULL || strncmp(uri, "wss://", 6) == 0)
        return false;
    p += 3;
    const char *h = p, *h_end;
    if (*p == '[') {
        h = p + 1;
        h_end = strchr(h, ']');
        if (h_end == NULL)
            return false;
        p = h_end + 1;
    } else {
        h_end = p + strcspn(p, ":/");
        p = h_end;
    }
    size_t n = (size_t)(h_end - h);
    if (n == 0 || n >= host_len)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    const char *pt = "8883";
    size_t pn = 4;
    if (*p == ':') {
        pt = p + 1;
        pn = strcspn(pt, "/");
    }
    if (pn == 0 || pn >= port_len)
        return false;
    memcpy(port, pt, pn);
    port[pn] = '\0';
    return true;
}

/* Publishes the diagnosis's socket for enpid_mqtt_reconnect_stop(); false when stopping. */
static bool diag_register(enpid_mqtt_t *m, int fd)
{
    pthread_mutex_lock(&m->rc_mu);
    bool ok = !m->rc_stop;
    m->rc_diag_fd = ok ? fd : -1;
    pthread_mutex_unlock(&m->rc_mu);
    return ok;
}

/* A TCP connection to host:port within DIAG_TIMEOUT_MS, blocking with send/receive
 * timeouts after, registered as rc_diag_fd (the caller unregisters and closes it).
 * Returns the socket, or -1 with *why set (NULL when enpid is stopping). */
static int diag_connect(enpid_mqtt_t *m, const char *host, const char *port, const char **why)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        *why = gai_strerror(gai);
        return -1;
    }
    int fd = -1;
    *why = "no address";
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            *why = strerror(errno);
            continue;
        }
        if (!diag_register(m, fd)) {
            *why = NULL;
            close(fd);
            fd = -1;
            break;
        }
        int err = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                int pr = poll(&pfd, 1, DIAG_TIMEOUT_MS);
                socklen_t len = sizeof err;
                if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0)
                    ; /* err is the connect's result */
                else
                    err = pr == 0 ? ETIMEDOUT : errno;
            }
        }
        if (err != 0) {
            *why = strerror(err);
            diag_register(m, -1);
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        struct timeval tv = {.tv_sec = DIAG_TIMEOUT_MS / 1000,
                             .tv_usec = (DIAG_TIMEOUT_MS % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

/* OpenSSL's first queued error as text (cleared), or `dflt`. */
static const char *ssl_err_text(char *buf, size_t len, const char *dflt)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0)
        return dflt;
    ERR_error_string_n(e, buf, len);
    return buf;
}

/* Subject and validity of the broker's certificate, for the log line. */
static void describe_cert(X509 *cert, char *out, size_t len)
{
    out[0] = '\0';
    if (cert == NULL)
        return;
    char subject[256];
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    char from[64] = "?", to[64] = "?";
    BIO *b = BIO_new(BIO_s_mem());
    if (b != NULL) {
        int n;
        if (ASN1_TIME_print(b, X509_get0_notBefore(cert)) == 1 &&
            (n = BIO_read(b, from, (int)sizeof from - 1)) > 0)
            from[n] = '\0';
        (void)BIO_reset(b);
        if (ASN1_TIME_print(b, X509_get0_notAfter(cert)) == 1 &&
            (n = BIO_read(b, to, (int)sizeof to - 1)) > 0)
            to[n] = '\0';
        BIO_free(b);
    }
    snprintf(out, len, " (certificate %s, valid %s to %s)", subject, from, to);
}

/*
 * With TLS 1.3 a broker checks the client's certificate after the client's handshake has
 * completed, and says so in an alert. Waits up to 1 s for one. Returns true with its text
 * in buf when the broker ended the connection; false when it waits for our CONNECT.
 */
static bool diag_peer_alert(SSL *ssl, int fd, char *buf, size_t len)
{
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte;
    ERR_clear_error();
    int n = SSL_peek(ssl, &byte, 1);
    if (n > 0)
        return false;
    int e = SSL_get_error(ssl, n);
    if (e == SSL_ERROR_WANT_READ ||
        (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)))
        return false; /* nothing within the second: it waits for CONNECT */
    ssl_err_text(buf, len, "the connection was closed");
    return true;
}

/*
 * Makes one TLS handshake to the broker as Paho would (same CA, client certificate, host
 * name check) and logs at error level why the broker's certificate is refused, or why
 * the handshake fails. Reconnect thread; blocks up to 2 x DIAG_TIMEOUT_MS.
 */
void enpid_mqtt_diagnose_tls(enpid_mqtt_t *m)
{
    char host[256], port[16], errbuf[256];
    if (!split_uri(m->uri, host, sizeof host, port, sizeof port))
        return;
    const char *why = NULL;
    int fd = diag_connect(m, host, port, &why);
    if (fd < 0) {
        if (why != NULL)
            log_err("mqtt: cannot reach %s port %s: %s", host, port, why);
        return;
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    X509 *cert = NULL;
    if (ctx == NULL)
        goto close_fd;
    if (m->ca_file ? SSL_CTX_load_verify_locations(ctx, m->ca_file, NULL) != 1
                   : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        log_err("mqtt: TLS: cannot load the CA certificates%s%s: %s", m->ca_file ? " of " : "",
                m->ca_file ? m->ca_file : "", ssl_err_text(errbuf, sizeof errbuf, "?"));
        goto free_ctx;
    }
    if (m->cert_file && (SSL_CTX_use_certificate_chain_file(ctx, m->cert_file) != 1 ||
                         SSL_CTX_use_PrivateKey_file(ctx, m->key_file ? m->key_file : m->cert_file,
                                                     SSL_FILETYPE_PEM) != 1)) {
        log_err("mqtt: TLS: cannot load the client certificate %s or its key: %s", m->cert_file,
                ssl_err_text(errbuf, sizeof errbuf, "?"));
        goto free_ctx;
    }
    /* Verify by hand after the handshake, so that the reason can be read. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1)
        goto free_ssl;
    struct in6_addr a6;
    struct in_addr a4;
    bool is_ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
    if (is_ip)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    else {
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
    }
    if (SSL_connect(ssl) != 1) {
        if (!diag_register(m, fd))
            goto free_ssl; /* stopping: the socket was shut down under the handshake */
        log_err("mqtt: TLS handshake with %s port %s failed: %s", host, port,
                ssl_err_text(errbuf, sizeof errbuf, "the connection was closed"));
        goto free_ssl;
    }
    cert = SSL_get1_peer_certificate(ssl);
    long v = SSL_get_verify_result(ssl);
    char desc[512];
    describe_cert(cert, desc, sizeof desc);
    if (cert == NULL)
        log_err("mqtt: TLS: the broker at %s port %s sent no certificate", host, port);
    else if (v != X509_V_OK)
        log_err("mqtt: TLS: the broker's certificate is refused: %s%s",
                X509_verify_cert_error_string(v), desc);
    else if (!diag_peer_alert(ssl, fd, errbuf, sizeof errbuf))
        log_notice("mqtt: TLS: a test handshake with %s port %s verifies%s; the failure lies "
                   "elsewhere (see above)",
                   host, port, desc);
    else if (diag_register(m, fd)) /* not stopping */
        log_err("mqtt: TLS: the broker at %s port %s ended the connection after the handshake: "
                "%s (does it want a client certificate, or not trust ours?)",
                host, port, errbuf);
    X509_free(cert);
free_ssl:
    SSL_free(ssl);
free_ctx:
    SSL_CTX_free(ctx);
    ERR_clear_error();
close_fd:
    pthread_mutex_lock(&m->rc_mu);
    m->rc_diag_fd = -1;
    pthread_mutex_unlock(&m->rc_mu);
    close(fd);
}
