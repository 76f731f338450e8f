/* pipe_schedule.h -- the order in which one pipeline stage runs the forward (F) and backward (B)
 * passes of its M micro-batches in one optimiser step.
 *   GPipe: F0 F1 ... F(M-1), then B0 B1 ... B(M-1): M micro-batches alive at once.
 *   1F1B:  stage s of S runs min(S-1-s, M) forwards, then alternates one forward and one backward,
 *          then the remaining backwards: at most min(S-s, M) micro-batches alive.
 * Both run forwards and backwards in ascending micro-batch order, so gradients are accumulated in
 * the same order as the data-parallel path (bitwise the same sums).
 */
#ifndef I2P_PIPE_SCHEDULE_H
#define I2P_PIPE_SCHEDULE_H

enum { PIPE_GPIPE = 0, PIPE_1F1B = 1 };

typedef struct {
    char op;    /* 'F' or 'B' */
    long micro; /* 0 .. M-1 */
} pipe_op;

/* ops (2*M entries) receives stage `stage`'s order; returns the micro-batches alive at most (the
 * activation slots the stage needs; micro-batch j uses slot j % slots). */
long pipe_schedule_make(int kind, int stages, int stage, long M, pipe_op *ops);
/* "gpipe" / "1f1b" -> kind; -1 if neither. */
int pipe_schedule_parse(const char *name);
const char *pipe_schedule_name(int kind);

#endif
