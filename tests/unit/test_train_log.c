/* test_train_log.c -- the training log (train_log.h): loss.csv rows and header, the resume rule (rows after the checkpoint's step
 * dropped), the gnuplot PNG (signature checked) and a failing gnuplot reported as an error; the svm_acc column
 * (empty without a measurement), added on resume to a file written without it, kept on resume without the monitor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "support_tmpdir.h"
#include "train_log.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    return test_tmpdir_make(dir, sizeof dir, "losslog");
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(dir);
}

static long count_lines(const char *path, char *last, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    long c = 0;
    while (fgets(line, sizeof line, f)) { c++; snprintf(last, n, "%s", line); }
    fclose(f);
    return c;
}

static void test_csv_and_resume(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN], path[512], last[1024];
    train_log l;
    assert_int_equal(train_log_open(&l, dir, -1, 0, err), 0);
    for (long s = 1; s <= 10; s++)
        assert_int_equal(train_log_append(&l, s, s / 4, 1.0 / s, 0.5 / s, 0.5 / s, 1e-3, 12.5, NAN, err), 0);
    train_log_close(&l);
    snprintf(path, sizeof path, "%s/loss.csv", dir);
    assert_int_equal(count_lines(path, last, sizeof last), 11);
    assert_string_equal(last, "10,2,0.1,0.05,0.05,0.001,12.5\n");
    /* resume from step 6: rows 7..10 go, new rows follow row 6 */
    assert_int_equal(train_log_open(&l, dir, 6, 0, err), 0);
    assert_int_equal(train_log_append(&l, 7, 1, 0.7, 0.3, 0.4, 1e-3, 1, NAN, err), 0);
    train_log_close(&l);
    assert_int_equal(count_lines(path, last, sizeof last), 8);
    assert_string_equal(last, "7,1,0.7,0.3,0.4,0.001,1\n");
    FILE *f = fopen(path, "r");
    char head[256];
    assert_non_null(fgets(head, sizeof head, f));
    fclose(f);
    assert_string_equal(head, "step,epoch,loss,loss_3d,loss_2d,lr,samples_per_s\n");
}

static void read_file(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = 0;
    fclose(f);
}

static void test_svm_column(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN], path[512], text[2048];
    snprintf(path, sizeof path, "%s/loss.csv", dir);
    train_log l;
    /* a file written without the monitor ... */
    assert_int_equal(train_log_open(&l, dir, -1, 0, err), 0);
    for (long s = 1; s <= 4; s++)
        assert_int_equal(train_log_append(&l, s, 0, 1.0 / s, 0.5 / s, 0.5 / s, 1e-3, 2, 0.5, err), 0);
    train_log_close(&l);
    read_file(path, text, sizeof text);
    assert_null(strstr(text, "svm_acc"));
    assert_non_null(strstr(text, "\n4,0,0.25,0.125,0.125,0.001,2\n"));
    /* ... resumed at step 3 with the monitor: header and kept rows get the column */
    assert_int_equal(train_log_open(&l, dir, 3, 1, err), 0);
    assert_int_equal(train_log_append(&l, 4, 0, 0.25, 0.125, 0.125, 1e-3, 2, NAN, err), 0);
    assert_int_equal(train_log_append(&l, 5, 1, 0.2, 0.1, 0.1, 1e-3, 2, 0.375, err), 0);
    train_log_close(&l);
    read_file(path, text, sizeof text);
    assert_string_equal(text, "step,epoch,loss,loss_3d,loss_2d,lr,samples_per_s,svm_acc\n"
                              "1,0,1,0.5,0.5,0.001,2,\n2,0,0.5,0.25,0.25,0.001,2,\n"
                              "3,0,0.333333333,0.166666667,0.166666667,0.001,2,\n"
                              "4,0,0.25,0.125,0.125,0.001,2,\n5,1,0.2,0.1,0.1,0.001,2,0.375\n");
    /* resumed without the monitor: the column stays (empty) */
    assert_int_equal(train_log_open(&l, dir, 5, 0, err), 0);
    assert_int_equal(train_log_append(&l, 6, 1, 0.2, 0.1, 0.1, 1e-3, 2, NAN, err), 0);
    train_log_close(&l);
    read_file(path, text, sizeof text);
    assert_non_null(strstr(text, "\n5,1,0.2,0.1,0.1,0.001,2,0.375\n6,1,0.2,0.1,0.1,0.001,2,\n"));
    /* the plot with the second axis */
    if (system("command -v gnuplot > /dev/null") != 0) {
        printf("SKIP: train_log_plot with svm_acc: gnuplot not installed\n");
        skip();
    }
    int rc = train_log_plot(dir, err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
}

static void test_plot(void **state)
{
    (void)state;
    char err[I2P_ERR_LEN], png[512];
    train_log l;
    assert_int_equal(train_log_open(&l, dir, -1, 0, err), 0);
    for (long s = 1; s <= 5; s++)
        assert_int_equal(train_log_append(&l, s, 0, 2.0 / s, 1.0 / s, 1.0 / s, 1e-3, 3, NAN, err), 0);
    train_log_close(&l);
    snprintf(png, sizeof png, "%s/loss.png", dir);
    if (system("command -v gnuplot > /dev/null") != 0) {
        printf("SKIP: train_log_plot: gnuplot not installed (optional: pretrain then warns, no loss.png)\n");
        skip();
    }
    int rc = train_log_plot(dir, err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    FILE *f = fopen(png, "rb");
    assert_non_null(f);
    unsigned char sig[4];
    assert_int_equal(fread(sig, 1, 4, f), 4);
    fclose(f);
    assert_memory_equal(sig, "\x89PNG", 4);
    /* a failing gnuplot is an error, and leaves no partial file */
    unlink(png);
    setenv("I2PMAE_GNUPLOT", "/nonexistent/gnuplot", 1);
    assert_int_equal(train_log_plot(dir, err), -1);
    unsetenv("I2PMAE_GNUPLOT");
    assert_non_null(strstr(err, "gnuplot failed"));
    assert_int_equal(access(png, F_OK), -1);
    char partial[600];
    snprintf(partial, sizeof partial, "%s.partial", png);
    assert_int_equal(access(partial, F_OK), -1);
}

/* issue 18 (5): a run directory whose name holds a newline used to inject gnuplot commands */
static void test_plot_injection(void **state)
{
    (void)state;
    char evil[512], pwned[300], csv[600], err[I2P_ERR_LEN];
    snprintf(pwned, sizeof pwned, "%s/PWNED", dir);
    snprintf(evil, sizeof evil, "%s/pw\n!touch PWNED\n", dir); /* gnuplot runs in dir */
    assert_int_equal(mkdir(evil, 0755), 0);
    snprintf(csv, sizeof csv, "%s/loss.csv", evil);
    FILE *f = fopen(csv, "w");
    assert_non_null(f);
    fprintf(f, "step,epoch,loss,loss_3d,loss_2d,lr,samples_per_s\n1,0,1,1,1,1,1\n2,0,0.5,0.5,0.5,1,1\n");
    fclose(f);
    assert_int_equal(train_log_path_unsafe(evil), 1);
    assert_int_equal(train_log_path_unsafe("runs/ok-1_a b"), 0);
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    int rc = train_log_plot(evil, err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "control characters"));
    assert_int_equal(access(pwned, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_csv_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plot_injection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svm_column, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
