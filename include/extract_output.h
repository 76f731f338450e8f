/* extract_output.h -- the output side of `extract` on the last stage of each replica: opening the
 * features file (create / resume / already complete) and the flush buffer that turns a
 * micro-batch's ViT outputs into stored rows (half conversion, per-point saliency).
 */
#ifndef I2P_EXTRACT_OUTPUT_H
#define I2P_EXTRACT_OUTPUT_H

#include <stdint.h>

#include "features_file.h"

typedef enum { OUTPUT_CREATED = 0, OUTPUT_RESUMED = 1, OUTPUT_COMPLETE = 2 } output_state;

/* Collective over io (the last-stage ranks). Opens the output for meta m: a complete final file
 * with the same identity -> OUTPUT_COMPLETE (nothing opened); a .partial with the same identity ->
 * OUTPUT_RESUMED; otherwise creates it (force replaces a file with another identity, without
 * force that is an error naming both identities). done (m->n bytes) receives the /done mask. */
int extract_output_open(features_file *ff, const char *path, MPI_Comm io, const features_meta *m,
                        const char *config_json, int force, output_state *state, uint8_t *done,
                        char *err);

typedef struct {
    long cap, count;       /* samples */
    int V, g, C, S;
    long P;
    int fp32;
    long *rows;
    void *patch, *cls;     /* half (uint16) or float per fp32 */
    float *saliency, *point_saliency;
    int16_t *pixel;
    int32_t *label;
} output_buffer;

int output_buffer_alloc(output_buffer *b, long cap, int V, int g, int C, int S, long P, int fp32,
                        char *err);
void output_buffer_free(output_buffer *b);

/* Appends n samples (rows increasing, after those already held): patch (n*V, g*g, C), cls (n*V, C),
 * saliency (n*V, g*g), pixel (n, V, P, 2), label (n). Computes the per-point saliency and converts
 * to the storage type. OpenMP over samples. */
void output_buffer_add(output_buffer *b, long n, const long *rows, const float *patch,
                       const float *cls, const float *saliency, const int16_t *pixel,
                       const int32_t *label);

/* Writes the held rows collectively (count 0 allowed) and empties the buffer. bytes += data bytes. */
int output_buffer_flush(output_buffer *b, features_file *ff, double *bytes, char *err);

#endif
