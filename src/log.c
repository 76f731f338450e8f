/* log.c -- rank-aware logging and progress lines (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem_peak.h"

/* A log message longer than this is cut. */
#define LOG_LINE_LEN 4096

static int g_rank = 0;
static int g_verbose = 0;

void log_init(int world_rank, int verbose)
{
    g_rank = world_rank;
    g_verbose = verbose;
}

void log_set_verbose(int verbose) { g_verbose = verbose; }

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void vlog(FILE *out, const char *prefix, const char *fmt, va_list ap)
{
    char line[LOG_LINE_LEN];
    vsnprintf(line, sizeof line, fmt, ap);
    if (g_verbose)
        fprintf(out, "[rank %d] %s%s\n", g_rank, prefix, line);
    else
        fprintf(out, "%s%s\n", prefix, line);
    fflush(out);
}

void log_info(const char *fmt, ...)
{
    if (g_rank != 0 && !g_verbose) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(stdout, "", fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    if (!g_verbose) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(stdout, "debug: ", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(stderr, "i2pmae: warning: ", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char line[LOG_LINE_LEN];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "i2pmae: error: %s\n", line);
    fflush(stderr);
}

void progress_start(progress *p, const char *label, const char *unit, long total)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->unit = unit;
    p->total = total;
    p->t0_s = now_s();
    p->last_print_s = p->t0_s;
    const char *env = getenv("I2PMAE_PROGRESS_S");
    p->interval_s = env ? atof(env) : 10.0;
}

static void format_duration(double s, char *out, size_t n)
{
    if (s < 0 || s > 1e8) { snprintf(out, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ldh%02ldm%02lds", t / 3600, (t / 60) % 60, t % 60);
    else if (t >= 60) snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(out, n, "%lds", t);
}

static void progress_print(progress *p, double t)
{
    double el = t - p->t0_s;
    double rate = el > 0 ? (double)p->done / el : 0.0;
    char eta[32], elapsed[32];
    format_duration(rate > 0 ? (double)(p->total - p->done) / rate : -1, eta, sizeof eta);
    format_duration(el, elapsed, sizeof elapsed);
    double pct = p->total > 0 ? 100.0 * (double)p->done / (double)p->total : 100.0;
    log_info("%s: %ld/%ld %s (%.1f%%), %.2f %s/s, elapsed %s, ETA %s, peak RSS %.2f GiB", p->label,
             p->done, p->total, p->unit, pct, rate, p->unit, elapsed, eta, mem_gib(mem_peak_bytes()));
    p->last_print_s = t;
}

void progress_update(progress *p, long done)
{
    p->done = done;
    double t = now_s();
    if (t - p->last_print_s >= p->interval_s) progress_print(p, t);
}

void progress_finish(progress *p)
{
    double t = now_s();
    double el = t - p->t0_s;
    log_info("%s: done, %ld %s in %.2f s (%.2f %s/s)", p->label, p->done, p->unit, el,
             el > 0 ? (double)p->done / el : 0.0, p->unit);
}
