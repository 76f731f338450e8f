/* pipe_schedule.c -- GPipe and 1F1B orders of one pipeline stage (see pipe_schedule.h). */
#include "pipe_schedule.h"

#include <string.h>

long pipe_schedule_make(int kind, int stages, int stage, long M, pipe_op *ops)
{
    long n = 0, f = 0, b = 0;
    if (kind == PIPE_GPIPE) {
        for (long j = 0; j < M; j++) ops[n++] = (pipe_op){'F', j};
        for (long j = 0; j < M; j++) ops[n++] = (pipe_op){'B', j};
        return M;
    }
    long warm = stages - 1 - stage;
    if (warm > M) warm = M;
    while (f < warm) ops[n++] = (pipe_op){'F', f++};
    while (f < M) {
        ops[n++] = (pipe_op){'F', f++};
        ops[n++] = (pipe_op){'B', b++};
    }
    while (b < M) ops[n++] = (pipe_op){'B', b++};
    return warm + 1 < M ? warm + 1 : M;
}

int pipe_schedule_parse(const char *name)
{
    if (!strcmp(name, "gpipe")) return PIPE_GPIPE;
    if (!strcmp(name, "1f1b")) return PIPE_1F1B;
    return -1;
}

const char *pipe_schedule_name(int kind)
{
    return kind == PIPE_GPIPE ? "gpipe" : "1f1b";
}
