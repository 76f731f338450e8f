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

/* The rows of up to cap samples, in the layout of the file m describes (data[id]: cap rows of
 * dataset id, features_row_bytes each, for every dataset before FEATURES_DONE). */
typedef struct {
    long cap, count;       /* samples */
    features_meta m;
    long *rows;
    void *data[FEATURES_DONE];
} output_buffer;

int output_buffer_alloc(output_buffer *b, long cap, const features_meta *m, char *err);
void output_buffer_free(output_buffer *b);

/* Appends n samples (rows increasing, after those already held): patch (n*V, g*g, C), cls (n*V, C),
 * saliency (n*V, g*g), pixel (n, V, P, 2), label (n). Computes the per-point saliency (bicubic at
 * m.image pixels) and converts to the storage type. OpenMP over samples. */
void output_buffer_add(output_buffer *b, long n, const long *rows, const float *patch,
                       const float *cls, const float *saliency, const int16_t *pixel,
                       const int32_t *label);

/* Writes the held rows collectively (count 0 allowed) and empties the buffer. bytes += data bytes. */
int output_buffer_flush(output_buffer *b, features_file *ff, double *bytes, char *err);

#endif
