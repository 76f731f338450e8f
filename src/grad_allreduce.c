/* grad_allreduce.c -- in-place sum of the flat step buffer over the data ranks (see grad_allreduce.h). */
#include "grad_allreduce.h"

#include <limits.h>

#include "errors.h"
#include "log.h"

int grad_allreduce(double *buf, long n, MPI_Comm comm, double *seconds, char *err)
{
    double t0 = now_s();
    for (long off = 0; off < n; off += INT_MAX) {
        int count = (int)(n - off < INT_MAX ? n - off : INT_MAX);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, count, MPI_DOUBLE, MPI_SUM, comm);
        if (rc != MPI_SUCCESS) return errf(err, "MPI_Allreduce of %d gradient doubles failed (code %d)",
                                           count, rc);
    }
    *seconds += now_s() - t0;
    return 0;
}
