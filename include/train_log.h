/* train_log.h -- the training log of a pre-training run: RUNDIR/loss.csv and its plot RUNDIR/loss.png.
 *
 * loss.csv has the header
 *   step,epoch,loss,loss_3d,loss_2d,lr,samples_per_s
 * and one row per logged step (step = optimiser steps done, 1-based; lr = the rate used in that
 * step), flushed after every row. With the SVM monitor (svm_monitor.h) the header has an eighth
 * column, svm_acc: the linear-SVM test accuracy measured after that step, empty on the other rows.
 * A resumed run keeps the column if the file has it, and adds it (header, and an empty field on the
 * rows kept) if the monitor is on and the file was written without it. On --resume from step S, rows with step > S (written by the run
 * that was killed after its last checkpoint) are dropped first, so the file always equals the one an
 * uninterrupted run writes (timing columns aside); that rewrite goes through atomic_file.h.
 * loss.png is drawn by gnuplot (command from $I2PMAE_GNUPLOT, default "gnuplot"), written as
 * loss.png.partial and renamed (atomic_file.h). Rank 0 only; not collective.
 */
#ifndef I2P_TRAIN_LOG_H
#define I2P_TRAIN_LOG_H

#include <stdio.h>

#include "paths.h"

typedef struct {
    FILE *f;
    char path[I2P_PATH_LEN];
    int svm_column;  /* the rows have the svm_acc column */
} train_log;

/* Opens RUNDIR/loss.csv: resume_step < 0 starts a new file, otherwise keeps the rows up to it.
 * svm_column: 1 if the SVM monitor is on (the svm_acc column; see above for resumed files). */
int train_log_open(train_log *l, const char *rundir, long resume_step, int svm_column, char *err);
/* svm_acc: NAN for an empty field (written only if the file has the column). */
int train_log_append(train_log *l, long step, long epoch, double loss, double loss_3d, double loss_2d,
                      double lr, double samples_per_s, double svm_acc, char *err);
void train_log_close(train_log *l);

/* 1 if path cannot go into the plot script (quotes or control characters, e.g. a newline that
 * would start a gnuplot command); pretrain refuses such a run directory before it starts. */
int train_log_path_unsafe(const char *path);

/* Draws RUNDIR/loss.png from RUNDIR/loss.csv (total, 3D and 2D loss against step; log scale; and
 * the svm_acc values on a second axis, 0 to 1, if the file has any).
 * Returns -1 with err if gnuplot is missing or fails (callers warn and go on). */
int train_log_plot(const char *rundir, char *err);

/* Draws RUNDIR/curves.png from RUNDIR/metrics.csv of finetune or partseg (epoch, lr, train_loss,
 * train_acc and two test values; train_metrics_row): the training loss, and in percent on a second
 * axis the training accuracy and the test values, with plot title `title`, that axis labelled
 * y2label and the three lines titled acc_title, test1_title and test2_title.
 * Returns -1 with err if gnuplot is missing or fails (callers warn and go on). */
int train_curves_plot(const char *rundir, const char *title, const char *y2label, const char *acc_title,
                      const char *test1_title, const char *test2_title, char *err);

/* Shared with the fine-tuning metrics (metrics.csv): keeps the header and the rows whose first
 * column is <= keep of the CSV file path (rewritten via path.partial); a missing file is fine. */
int csv_truncate_rows(const char *path, long keep, char *err);

/* Runs gnuplot (command from $I2PMAE_GNUPLOT, default "gnuplot") on "set terminal png ...; set
 * output '<png>.partial'" followed by script, checks the result is a PNG and renames it to png.
 * -1 with err if gnuplot is missing or fails. */
int gnuplot_png(const char *png, const char *script, char *err);

#endif
