/* summary.c -- the final JSON line of every subcommand (see summary.h). */
#include "summary.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "mem_peak.h"
#include "version.h"

cJSON *summary_begin(const char *command, int ranks)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "i2pmae", I2PMAE_VERSION);
    cJSON_AddStringToObject(o, "command", command);
    cJSON_AddNumberToObject(o, "ranks", ranks);
    cJSON_AddNumberToObject(o, "threads", omp_get_max_threads());
    return o;
}

void summary_emit(cJSON *obj, int rank)
{
    if (rank == 0) {
        char *s = cJSON_PrintUnformatted(obj);
        printf("%s\n", s);
        fflush(stdout);
        free(s);
    }
    cJSON_Delete(obj);
}

void summary_add_rank_times(cJSON *obj, const double mine[4], double wall_s, MPI_Comm comm)
{
    int size;
    MPI_Comm_size(comm, &size);
    double *all = malloc(sizeof(double) * 4 * (size_t)size);
    double none[4];
    MPI_Allgather(mine, 4, MPI_DOUBLE, all ? all : none, all ? 4 : 0, MPI_DOUBLE, comm);
    cJSON *arr = cJSON_AddArrayToObject(obj, "per_rank");
    double comm_s = 0, io = 0, idle = 0;
    for (int i = 0; all && i < size; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rank", i);
        cJSON_AddNumberToObject(o, "compute_s", all[4 * i]);
        cJSON_AddNumberToObject(o, "comm_s", all[4 * i + 1]);
        cJSON_AddNumberToObject(o, "idle_s", all[4 * i + 2]);
        cJSON_AddNumberToObject(o, "io_s", all[4 * i + 3]);
        cJSON_AddItemToArray(arr, o);
        comm_s += all[4 * i + 1];
        idle += all[4 * i + 2];
        io += all[4 * i + 3];
    }
    free(all);
    double total = wall_s * size;
    cJSON_AddNumberToObject(obj, "comm_share", total > 0 ? comm_s / total : 0.0);
    cJSON_AddNumberToObject(obj, "io_share", total > 0 ? io / total : 0.0);
    cJSON_AddNumberToObject(obj, "idle_share", total > 0 ? idle / total : 0.0);
}

void summary_add_peak_memory(cJSON *obj, MPI_Comm comm)
{
    int n;
    MPI_Comm_size(comm, &n);
    long *all = malloc(sizeof(long) * (size_t)n);
    long max = mem_peak_max(comm, all); /* collective even when all is NULL (no memory) */
    cJSON_AddNumberToObject(obj, "peak_rss_bytes", (double)max);
    if (!all) return;
    cJSON *arr = cJSON_AddArrayToObject(obj, "peak_rss_bytes_per_rank");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)all[i]));
    free(all);
}
