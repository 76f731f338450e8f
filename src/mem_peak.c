/* mem_peak.c -- peak resident memory from /proc/self/status (see mem_peak.h). */
#include "mem_peak.h"

#include <stdio.h>
#include <string.h>

long mem_peak_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) {
            if (sscanf(line + 6, "%ld", &kb) != 1) kb = -1;
            break;
        }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

long mem_peak_max(MPI_Comm comm, long *all)
{
    long mine = mem_peak_bytes(), max = mine;
    if (all) {
        MPI_Allgather(&mine, 1, MPI_LONG, all, 1, MPI_LONG, comm);
        int n;
        MPI_Comm_size(comm, &n);
        for (int i = 0; i < n; i++)
            if (all[i] > max) max = all[i];
    } else {
        MPI_Allreduce(&mine, &max, 1, MPI_LONG, MPI_MAX, comm);
    }
    return max;
}

double mem_gib(long bytes)
{
    return bytes < 0 ? -1.0 : (double)bytes / (1024.0 * 1024.0 * 1024.0);
}
