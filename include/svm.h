/* svm.h -- linear SVM on dense feature vectors through liblinear (Debian's liblinear 2.3).
 *
 * Solver: L2R_L1LOSS_SVC_DUAL (hinge loss, L2 regularisation, dual coordinate descent), the
 * liblinear solver closest to scikit-learn's SVC(kernel='linear') used by the paper's protocol.
 * Two differences remain: liblinear is one-vs-rest where SVC is one-vs-one, and liblinear's bias
 * is an extra constant feature (value 1) that is regularised with the weights.
 * liblinear draws its coordinate order and cross-validation folds from rand(); every function here
 * calls srand(seed) first, so results are deterministic. Not collective: call on one rank.
 */
#ifndef I2P_SVM_H
#define I2P_SVM_H

#include <stdint.h>

typedef struct svm_classifier svm_classifier;

/* Trains on x (n, dim) with labels y (n) >= 0. *out is owned by the caller (svm_free). */
int svm_train(const float *x, const int32_t *y, long n, int dim, double C, unsigned seed,
              svm_classifier **out, char *err);
/* pred (n) receives the predicted label of each row of x (n, dim). */
void svm_predict(const svm_classifier *m, const float *x, long n, int dim, int32_t *pred);
void svm_free(svm_classifier *m);

/* Accuracy of `folds`-fold cross-validation on (x, y). */
int svm_cross_validate(const float *x, const int32_t *y, long n, int dim, double C, int folds,
                       unsigned seed, double *accuracy, char *err);

/* Chooses C from grid (n_grid values) by cross-validation accuracy; ties go to the smaller C.
 * cv_acc (n_grid) receives each value's accuracy (may be NULL). */
int svm_select_c(const float *x, const int32_t *y, long n, int dim, const double *grid, int n_grid,
                 int folds, unsigned seed, double *best_c, double *cv_acc, char *err);

#endif
