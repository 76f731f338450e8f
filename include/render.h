/* render.h -- a PNG of one sample's depth maps (one row per view) and, given a features file,
 * its saliency overlaid, so users see what the 2D model sees (`i2pmae render`).
 *
 * Left column: the depth map (scatter-summed depth, black where empty, grey 40..255 over the
 * occupied range); right column, with a features file: the saliency of the 2D model
 * (bicubic-upsampled to the image) over it, black-red-yellow-white. Views are separated by 4 px.
 * With a dump path, also writes the exact arrays the ViT would get: /depth (V,S,S) raw depth sums,
 * /image (V,3,S,S) normalised, /pixel (V,P,2) (the projection tests compare them with numpy).
 */
#ifndef I2P_RENDER_H
#define I2P_RENDER_H

typedef struct {
    const char *input;    /* point-cloud dataset */
    const char *output;   /* PNG to write */
    const char *features; /* features file of the dataset (NULL or "": no saliency column) */
    const char *dump;     /* HDF5 file for the ViT input arrays (NULL or "": none) */
    long sample;          /* index of the sample to draw */
    int views, image;     /* views (a features file sets its own) and side in pixels */
    int force;            /* replace an existing dump file */
} render_options;

/* Draws sample o->sample of o->input into o->output. One process (MPI_COMM_SELF): errors name the
 * file or option ("--sample 7: DATA has samples 0..3"). */
int render_sample(const render_options *o, char *err);

#endif
