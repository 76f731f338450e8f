/* summary.c -- the final JSON line of every subcommand (see summary.h). */
#include "summary.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

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
