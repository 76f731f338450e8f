/* make_ckpt_seed.c -- writes the seed checkpoints of tests/fuzz/corpus/h5_checkpoint/ with the real
 * writer (ckpt_write) and tiny arrays, so the seeds are a few KB (a real run's checkpoint is MBs).
 * Not built by the Makefile; by hand, after `make all`:
 *   mpicc -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags hdf5-openmpi libcjson) \
 *     tests/fuzz/make_ckpt_seed.c build/libi2pmae.a -fopenmp -o /tmp/mkckpt \
 *     $(pkg-config --libs hdf5-openmpi libcjson inih libpng) -ldnnl -llinear -lcrypto -lm
 *   /tmp/mkckpt ckpt.h5 5; /tmp/mkckpt ckpt_params_only.h5 1    (arguments: file, arrays to write) */
#include <mpi.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include "checkpoint.h"
#include "h5io.h"
#include "errors.h"
int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    h5io_init();
    float p[6] = {1, 2, 3, 4, 5, 6}, m[6] = {0}, v[6] = {0}, b[2] = {0.5f, 1};
    int64_t perm[4] = {3, 1, 0, 2};
    ckpt_array arr[] = {{"/params", CKPT_F32, p, 6}, {"/adamw/m", CKPT_F32, m, 6},
                        {"/adamw/v", CKPT_F32, v, 6}, {"/buffers", CKPT_F32, b, 2},
                        {"/data_order/perm", CKPT_I64, perm, 4}};
    ckpt_state st = {7, 1, 2, 42};
    char err[I2P_ERR_LEN];
    int rc = ckpt_write(argv[1], MPI_COMM_SELF, &st, "{\"points\":128,\"lr\":0.002,\"dims\":\"12,24,48\"}",
                        "seed file", arr, atoi(argv[2]), err);
    if (rc) fprintf(stderr, "%s\n", err);
    MPI_Finalize();
    return rc;
}
