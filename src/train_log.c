/* train_log.c -- the training log: loss.csv (resume-consistent) and its gnuplot PNG (see train_log.h). */
#include "train_log.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errors.h"

#define LOSS_CSV_HEADER "step,epoch,loss,loss_3d,loss_2d,lr,samples_per_s\n"
#define LOSS_CSV_SVM_HEADER "step,epoch,loss,loss_3d,loss_2d,lr,samples_per_s,svm_acc\n"
/* Longest row of loss.csv we read back (a row is 8 numbers, under 200 characters). */
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

/* On resume: whether the kept loss.csv has the svm_acc column (*has); with want, a file without it
 * (written without the monitor, or by an older i2pmae) gets it: the header is extended and every
 * row gets an empty field (rewritten via atomic_file.h). A missing file is fine. */
static int svm_column_upgrade(const char *path, int want, int *has, char *err)
{
    *has = 0;
    FILE *in = fopen(path, "r");
    if (!in) return errno == ENOENT ? 0 : errf(err, "%s: %s", path, strerror(errno));
    char line[LOSS_CSV_LINE_LEN];
    int old = fgets(line, sizeof line, in) && !strcmp(line, LOSS_CSV_HEADER);
    *has = !old;
    if (!old || !want) {
        fclose(in);
        return 0;
    }
    atomic_file out;
    if (atomic_file_open(&out, path, err)) {
        fclose(in);
        return -1;
    }
    int rc = atomic_file_write(&out, LOSS_CSV_SVM_HEADER, strlen(LOSS_CSV_SVM_HEADER), err);
    while (!rc && fgets(line, sizeof line, in)) {
        size_t n = strcspn(line, "\n");
        rc = atomic_file_write(&out, line, n, err) || atomic_file_write(&out, ",\n", 2, err);
    }
    fclose(in);
    *has = 1;
    return rc ? -1 : atomic_file_commit(&out, err);
}

int train_log_open(train_log *l, const char *rundir, long resume_step, int svm_column, char *err)
{
    snprintf(l->path, sizeof l->path, "%s/loss.csv", rundir);
    l->f = NULL;
    l->svm_column = svm_column;
    if (resume_step >= 0) {
        if (csv_truncate_rows(l->path, resume_step, err)) return -1;
        int has;
        if (svm_column_upgrade(l->path, svm_column, &has, err)) return -1;
        int exists = access(l->path, F_OK) == 0;
        l->svm_column = exists ? has : svm_column;
        l->f = fopen(l->path, "a");
        if (l->f && !exists) fputs(l->svm_column ? LOSS_CSV_SVM_HEADER : LOSS_CSV_HEADER, l->f);
    } else {
        l->f = fopen(l->path, "w");
        if (l->f) fputs(l->svm_column ? LOSS_CSV_SVM_HEADER : LOSS_CSV_HEADER, l->f);
    }
    if (!l->f) return errf(err, "%s: cannot write: %s", l->path, strerror(errno));
    fflush(l->f);
    return 0;
}

int train_log_append(train_log *l, long step, long epoch, double loss, double loss_3d, double loss_2d,
                     double lr, double samples_per_s, double svm_acc, char *err)
{
    fprintf(l->f, "%ld,%ld,%.9g,%.9g,%.9g,%.9g,%.4g", step, epoch, loss, loss_3d, loss_2d, lr,
            samples_per_s);
    if (l->svm_column && isnan(svm_acc)) fputs(",", l->f);
    else if (l->svm_column) fprintf(l->f, ",%.9g", svm_acc);
    fputs("\n", l->f);
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

/* 1 if some row of the CSV file has a value in column 8 (svm_acc). */
static int has_svm_values(const char *csv)
{
    FILE *f = fopen(csv, "r");
    if (!f) return 0;
    char line[LOSS_CSV_LINE_LEN];
    int found = 0, first = 1;
    while (!found && fgets(line, sizeof line, f)) {
        char *p = line;
        for (int i = 0; p && i < 7; i++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
        found = !first && p && *p && *p != '\n';
        first = 0;
    }
    fclose(f);
    return found;
}

int train_curves_plot(const char *rundir, const char *title, const char *y2label, const char *acc_title,
                      const char *test1_title, const char *test2_title, char *err)
{
    char csv[I2P_PATH_LEN], png[I2P_PATH_LEN], script[2 * I2P_PATH_LEN];
    snprintf(csv, sizeof csv, "%s/metrics.csv", rundir);
    snprintf(png, sizeof png, "%s/curves.png", rundir);
    snprintf(script, sizeof script,
             "set datafile separator ','\n"
             "set datafile missing 'nan'\n"
             "set title '%s'\n"
             "set xlabel 'epoch'\nset ylabel 'train loss'\nset y2label '%s'\n"
             "set ytics nomirror\nset y2tics\nset y2range [0:100]\nset grid\nset key below\n"
             "plot '%s' every ::1 using 1:3 with lines lw 2 title 'train loss', "
             "'' every ::1 using 1:($4*100) axes x1y2 with lines title '%s', "
             "'' every ::1 using 1:($5*100) axes x1y2 with linespoints pt 7 ps 0.5 title '%s', "
             "'' every ::1 using 1:($6*100) axes x1y2 with lines dt 2 title '%s'\n",
             title, y2label, csv, acc_title, test1_title, test2_title);
    return gnuplot_png(png, script, err);
}

int train_log_plot(const char *rundir, char *err)
{
    char csv[I2P_PATH_LEN], png[I2P_PATH_LEN], script[3 * I2P_PATH_LEN];
    snprintf(csv, sizeof csv, "%s/loss.csv", rundir);
    snprintf(png, sizeof png, "%s/loss.png", rundir);
    int svm = has_svm_values(csv);
    snprintf(script, sizeof script,
             "set datafile separator ','\n"
             "set key autotitle columnhead\n"
             "set title 'I2P-MAE pre-training loss'\n"
             "set xlabel 'step'\nset ylabel 'loss'\nset logscale y\nset grid\n"
             "%s"
             "plot '%s' using 1:3 with lines lw 2 title 'loss', "
             "'' using 1:4 with lines title 'loss_3d (Chamfer L2)', "
             "'' using 1:5 with lines title 'loss_2d (MSE)'%s\n",
             svm ? "set y2label 'linear-SVM test accuracy'\nset y2range [0:1]\nset y2tics\n"
                   "set ytics nomirror\nset key bottom left\n" : "",
             csv,
             svm ? ", '' using 1:8 axes x1y2 with linespoints pt 7 lw 2 title 'SVM test accuracy'" : "");
    if (gnuplot_png(png, script, err)) {
        size_t n = strlen(err);
        if (strstr(err, "gnuplot failed")) snprintf(err + n, I2P_ERR_LEN - n, "; the loss curve is in %s", csv);
        return -1;
    }
    return 0;
}
