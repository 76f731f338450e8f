/* svm.c -- liblinear wrapper: dense float features -> liblinear problems (see svm.h). */
#include "svm.h"

#include <linear.h>
#include <math.h>
#include <stdlib.h>

#include "errors.h"

struct svm_classifier {
    struct model *model;
    struct feature_node *row; /* dim + 2 nodes, scratch for prediction */
};

/* liblinear's rows: dim values (1-based indices), the bias node (index dim+1), the terminator. */
typedef struct {
    struct problem prob;
    struct feature_node *nodes;
} dense_problem;

static void quiet(const char *s) { (void)s; }

static void fill_row(struct feature_node *r, const float *x, int dim)
{
    for (int j = 0; j < dim; j++) {
        r[j].index = j + 1;
        r[j].value = x[j];
    }
    r[dim].index = dim + 1;
    r[dim].value = 1.0; /* bias feature */
    r[dim + 1].index = -1;
}

static int problem_make(dense_problem *p, const float *x, const int32_t *y, long n, int dim,
                        char *err)
{
    p->prob.l = (int)n;
    p->prob.n = dim + 1;
    p->prob.bias = 1.0;
    p->prob.y = malloc(sizeof(double) * (size_t)n);
    p->prob.x = malloc(sizeof(struct feature_node *) * (size_t)n);
    p->nodes = malloc(sizeof(struct feature_node) * (size_t)n * (size_t)(dim + 2));
    if (!p->prob.y || !p->prob.x || !p->nodes) {
        free(p->prob.y);
        free(p->prob.x);
        free(p->nodes);
        return errf(err, "svm: out of memory for %ld x %d features", n, dim);
    }
    for (long i = 0; i < n; i++) {
        p->prob.y[i] = y[i];
        p->prob.x[i] = p->nodes + i * (dim + 2);
        fill_row(p->prob.x[i], x + i * dim, dim);
    }
    return 0;
}

static void problem_free(dense_problem *p)
{
    free(p->prob.y);
    free(p->prob.x);
    free(p->nodes);
}

static struct parameter params_for(double C)
{
    struct parameter prm = {0};
    prm.solver_type = L2R_L1LOSS_SVC_DUAL;
    prm.eps = 0.1; /* liblinear's default for the dual solvers */
    prm.C = C;
    return prm;
}

static int check_args(long n, int dim, double C, char *err)
{
    if (n < 2) return errf(err, "svm: need at least 2 training samples, got %ld", n);
    if (dim < 1) return errf(err, "svm: feature dimension %d", dim);
    if (!(C > 0) || !isfinite(C)) return errf(err, "svm: C must be positive and finite, got %g", C);
    return 0;
}

int svm_train(const float *x, const int32_t *y, long n, int dim, double C, unsigned seed,
              svm_classifier **out, char *err)
{
    *out = NULL;
    if (check_args(n, dim, C, err)) return -1;
    long other = 1;
    while (other < n && y[other] == y[0]) other++;
    if (other == n) /* liblinear would train a model that always answers it */
        return errf(err, "svm: the training split has a single class (%d): nothing to separate", y[0]);
    set_print_string_function(quiet);
    dense_problem p;
    if (problem_make(&p, x, y, n, dim, err)) return -1;
    struct parameter prm = params_for(C);
    const char *msg = check_parameter(&p.prob, &prm);
    if (msg) {
        problem_free(&p);
        return errf(err, "svm: liblinear rejects the parameters: %s", msg);
    }
    srand(seed);
    svm_classifier *m = calloc(1, sizeof *m);
    if (m) m->row = malloc(sizeof(struct feature_node) * (size_t)(dim + 2));
    if (m && m->row) m->model = train(&p.prob, &prm);
    problem_free(&p);
    if (!m || !m->row || !m->model) {
        svm_free(m);
        return errf(err, "svm: liblinear training failed (out of memory?)");
    }
    *out = m;
    return 0;
}

void svm_predict(const svm_classifier *m, const float *x, long n, int dim, int32_t *pred)
{
    for (long i = 0; i < n; i++) {
        fill_row(m->row, x + i * dim, dim);
        pred[i] = (int32_t)predict(m->model, m->row);
    }
}

void svm_free(svm_classifier *m)
{
    if (!m) return;
    if (m->model) free_and_destroy_model(&m->model);
    free(m->row);
    free(m);
}

int svm_cross_validate(const float *x, const int32_t *y, long n, int dim, double C, int folds,
                       unsigned seed, double *accuracy, char *err)
{
    if (check_args(n, dim, C, err)) return -1;
    if (folds < 2 || folds > n) return errf(err, "svm: %d-fold cross-validation of %ld samples", folds, n);
    set_print_string_function(quiet);
    dense_problem p;
    if (problem_make(&p, x, y, n, dim, err)) return -1;
    struct parameter prm = params_for(C);
    double *target = malloc(sizeof(double) * (size_t)n);
    if (!target) {
        problem_free(&p);
        return errf(err, "svm: out of memory");
    }
    srand(seed);
    cross_validation(&p.prob, &prm, folds, target);
    long correct = 0;
    for (long i = 0; i < n; i++) correct += (int32_t)target[i] == y[i];
    *accuracy = (double)correct / (double)n;
    free(target);
    problem_free(&p);
    return 0;
}

int svm_select_c(const float *x, const int32_t *y, long n, int dim, const double *grid, int n_grid,
                 int folds, unsigned seed, double *best_c, double *cv_acc, char *err)
{
    double best = -1;
    for (int i = 0; i < n_grid; i++) {
        double acc;
        if (svm_cross_validate(x, y, n, dim, grid[i], folds, seed, &acc, err)) return -1;
        if (cv_acc) cv_acc[i] = acc;
        if (acc > best || (acc == best && grid[i] < *best_c)) {
            best = acc;
            *best_c = grid[i];
        }
    }
    return n_grid > 0 ? 0 : errf(err, "svm: empty C grid");
}
