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
