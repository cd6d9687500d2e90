/*
 * main.c - enpid's command line: which configuration to run with, --check-config,
 * --version, --help, -v; then the daemon's life cycle (daemon.c) around one uv_run().
 *
 * Exit status: 0 after a clean stop or a valid --check-config, 1 on any error (invalid
 * configuration, store locked or unreadable, broker refusing the subscription, a final
 * commit that failed), 2 on bad usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "enpid.h"

#define DEFAULT_CONFIG "/etc/enpid/enpid.yaml"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: enpid [--config FILE] [--check-config] [-v]\n"
            "\n"
            "Subscribes to energy and production meters over MQTT, aggregates their readings\n"
            "into windowed energy, production and SEC rollups and stores them in RocksDB.\n"
            "Runs in the foreground; logs go to stderr with syslog priority prefixes.\n"
            "\n"
            "  -c, --config FILE   configuration (default $ENPID_CONFIG, else " DEFAULT_CONFIG ")\n"
            "      --check-config  validate the configuration and exit (0 valid, 1 invalid)\n"
            "  -v, --verbose       debug logging\n"
            "  -V, --version       print the version and exit\n"
            "  -h, --help          print this help and exit\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop cleanly (drain, commit, exit 0); SIGHUP reloads\n"
            "facilities, meters, baselines and programme (an invalid file is refused and the\n"
            "running configuration kept).\n");
}

/*
 * --check-config: the configuration must parse and validate, and the pipeline must build
 * from it (time zones exist, topic templates compile). Prints "FILE: ok" on stdout and
 * returns 0, or the first error on stderr and returns 1.
 */
static int check_config(const char *path)
{
    char errbuf[1024] = "";
    enpi_config_t *cfg = NULL;
    int rc = enpi_config_load(path, &cfg, errbuf, sizeof errbuf);
    if (rc != 0) {
        fprintf(stderr, "%s\n", errbuf[0] ? errbuf : enpi_strerror(rc));
        return 1;
    }
    enpi_pipeline_t *p = NULL;
    errbuf[0] = '\0';
    rc = enpi_pipeline_create(cfg, &p, errbuf, sizeof errbuf);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", path, errbuf[0] ? errbuf : enpi_strerror(rc));
        enpi_config_free(cfg);
        return 1;
    }
    enpi_pipeline_free(p);
    enpi_config_free(cfg);
    printf("%s: ok\n", path);
    return 0;
}

int main(int argc, char **argv)
{
    /* clang-format off */
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* clang-format on */
    const char *path = getenv("ENPID_CONFIG");
    if (path == NULL || *path == '\0')
        path = DEFAULT_CONFIG;
    bool check = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'C':
            check = true;
            break;
        case 'v':
            enpi_log_max_level = ENPI_LOG_DEBUG;
            break;
        case 'V':
            printf("enpid %s\n", ENPI_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "enpid: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (check)
        return check_config(path);

    /* One read of the file: what is parsed is exactly what gets stored. */
    static enpid_t d; /* large; zero-initialised */
    char errbuf[1024] = "";
    d.config_path = path;
    if (enpid_config_read(path, &d.config_text, &d.config_len, errbuf, sizeof errbuf) != 0) {
        log_err("config: %s", errbuf);
        return 1;
    }
    int rc = enpi_config_parse(path, d.config_text, d.config_len, &d.cfg, errbuf, sizeof errbuf);
    if (rc != 0) {
        log_err("config: %s", errbuf[0] ? errbuf : enpi_strerror(rc));
        free(d.config_text);
        return 1;
    }
    log_notice("enpid %s starting with %s (store %s, broker %s)", ENPI_VERSION, path,
               d.cfg->storage.path, d.cfg->mqtt.uri);

    rc = enpid_daemon_start(&d);
    if (rc == 0) {
        uv_run(&d.loop, UV_RUN_DEFAULT);
    } else {
        d.exit_code = 1;
    }
    enpid_daemon_cleanup(&d);
    enpi_config_free(d.cfg);
    free(d.config_text);
    return d.exit_code;
}
