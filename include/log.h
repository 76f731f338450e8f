/* log.h -- rank-aware logging and progress lines.
 *
 * log_info/log_debug print on world rank 0 only, unless verbose logging is on (then every rank prints,
 * prefixed with its rank). log_warn prints on every rank that calls it. log_error prints
 * "i2pmae: error: <msg>" on stderr of the calling rank; commands call it once, on rank 0, after the
 * ranks agreed on the error (dist_any_error).
 * Progress lines report count, rate, ETA and the printing rank's peak resident memory (VmHWM,
 * mem_peak.h) at most every I2PMAE_PROGRESS_S seconds (default 10) and always at the end; they go
 * to stdout so batch logs carry them.
 */
#ifndef I2P_LOG_H
#define I2P_LOG_H

void log_init(int world_rank, int verbose);
void log_set_verbose(int verbose);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall-clock seconds from a monotonic clock. */
double now_s(void);

typedef struct {
    char label[64];
    long total;       /* units expected in all (e.g. samples over all ranks) */
    long done;        /* units done so far */
    const char *unit; /* e.g. "samples" */
    double t0_s, last_print_s, interval_s;
} progress;

void progress_start(progress *p, const char *label, const char *unit, long total);
/* Sets the count done (not an increment); prints if the interval passed. Cheap to call often. */
void progress_update(progress *p, long done);
/* Prints the final line with the overall rate. */
void progress_finish(progress *p);

#endif
