/* train_log.c -- the training log: loss.csv (resume-consistent) and its gnuplot PNG (see train_log.h). */
#include "train_log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errors.h"

#define LOSS_CSV_HEADER "step,epoch,loss,loss_3d,loss_2d,lr,samples_per_s\n"
/* Longest row of loss.csv we read back (a row is 7 numbers, under 200 characters). */
#define LOSS_CSV_LINE_LEN 1024

int csv_truncate_rows(const char *path, long keep, char *err)
{
    FILE *in = fopen(path, "r");
    if (!in) return errno == ENOENT ? 0 : errf(err, "%s: %s", path, strerror(errno));
    atomic_file out;
    if (atomic_file_open(&out, path, err)) {
        fclose(in);
        return -1;
    }
    char line[LOSS_CSV_LINE_LEN];
    int first = 1, rc = 0;
    while (!rc && fgets(line, sizeof line, in)) {
        char *end;
        long step = strtol(line, &end, 10);
        if (first || (end != line && *end == ',' && step <= keep))
            rc = atomic_file_write(&out, line, strlen(line), err);
        first = 0;
    }
    fclose(in);
    return rc ? -1 : atomic_file_commit(&out, err);
}

int train_log_open(train_log *l, const char *rundir, long resume_step, char *err)
{
    snprintf(l->path, sizeof l->path, "%s/loss.csv", rundir);
    l->f = NULL;
    if (resume_step >= 0) {
        if (csv_truncate_rows(l->path, resume_step, err)) return -1;
        int exists = access(l->path, F_OK) == 0;
        l->f = fopen(l->path, "a");
        if (l->f && !exists) fputs(LOSS_CSV_HEADER, l->f);
    } else {
        l->f = fopen(l->path, "w");
        if (l->f) fputs(LOSS_CSV_HEADER, l->f);
    }
    if (!l->f) return errf(err, "%s: cannot write: %s", l->path, strerror(errno));
    fflush(l->f);
    return 0;
}

int train_log_append(train_log *l, long step, long epoch, double loss, double loss_3d, double loss_2d,
                     double lr, double samples_per_s, char *err)
{
    fprintf(l->f, "%ld,%ld,%.9g,%.9g,%.9g,%.9g,%.4g\n", step, epoch, loss, loss_3d, loss_2d, lr,
            samples_per_s);
    if (fflush(l->f) != 0 || ferror(l->f))
        return errf(err, "%s: write failed: %s", l->path, strerror(errno));
    return 0;
}

void train_log_close(train_log *l)
{
    if (l->f) fclose(l->f);
    l->f = NULL;
}

static int is_png(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char buf[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, 8, f);
    fclose(f);
    return n == 8 && !memcmp(buf, sig, 8);
}

int train_log_path_unsafe(const char *path)
{
    /* Scripts quote paths in single quotes: a quote or a newline would end the string and the
     * line, and what follows would run as gnuplot commands (`!` runs a shell). */
    for (const unsigned char *c = (const unsigned char *)path; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '\'' || *c == '"') return 1;
    return 0;
}

int gnuplot_png(const char *png, const char *script, char *err)
{
    if (train_log_path_unsafe(png))
        return errf(err, "%s: cannot plot: quotes or control characters in the run directory name",
                    png);
    const char *gp = getenv("I2PMAE_GNUPLOT");
    char cmd[I2P_PATH_LEN + 32]; /* the gnuplot command (a path) and the redirection */
    snprintf(cmd, sizeof cmd, "%s > /dev/null 2>&1", gp && *gp ? gp : "gnuplot");
    atomic_file out; /* gnuplot writes out.partial by name; commit syncs and renames it */
    if (atomic_file_open(&out, png, err)) return -1;
    /* A gnuplot that is missing or exits early closes the pipe: without this, writing the script
     * would kill the whole run with SIGPIPE instead of failing the plot with a warning. */
    struct sigaction ignore, saved;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &saved);
    FILE *p = popen(cmd, "w");
    if (!p) {
        int e = errno;
        sigaction(SIGPIPE, &saved, NULL);
        atomic_file_abort(&out);
        return errf(err, "%s: cannot start gnuplot: %s", png, strerror(e));
    }
    fprintf(p, "set terminal png size 900,560\nset output '%s'\n%s", out.partial, script);
    int st = pclose(p);
    sigaction(SIGPIPE, &saved, NULL);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || !is_png(out.partial)) {
        atomic_file_abort(&out);
        return errf(err, "%s: gnuplot failed (status %d)", png, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    return atomic_file_commit(&out, err);
}

int train_log_plot(const char *rundir, char *err)
{
    char csv[I2P_PATH_LEN], png[I2P_PATH_LEN], script[2 * I2P_PATH_LEN];
    snprintf(csv, sizeof csv, "%s/loss.csv", rundir);
    snprintf(png, sizeof png, "%s/loss.png", rundir);
    snprintf(script, sizeof script,
             "set datafile separator ','\n"
             "set key autotitle columnhead\n"
             "set title 'I2P-MAE pre-training loss'\n"
             "set xlabel 'step'\nset ylabel 'loss'\nset logscale y\nset grid\n"
             "plot '%s' using 1:3 with lines lw 2 title 'loss', "
             "'' using 1:4 with lines title 'loss_3d (Chamfer L2)', "
             "'' using 1:5 with lines title 'loss_2d (MSE)'\n",
             csv);
    if (gnuplot_png(png, script, err)) {
        size_t n = strlen(err);
        if (strstr(err, "gnuplot failed")) snprintf(err + n, I2P_ERR_LEN - n, "; the loss curve is in %s", csv);
        return -1;
    }
    return 0;
}
