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
