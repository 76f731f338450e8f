/* render_rec.h -- the picture of a pre-trained network's 3D reconstruction of one sample
 * (`i2pmae render --checkpoint`), as in the figures of the MAE papers, so users see whether
 * pre-training works.
 *
 * The checkpoint's network runs one masked training forward (BatchNorm on the sample's tokens, no
 * update) on the sample's first `points` points, un-augmented, masked as in its pre-training
 * (2D-guided with the features file's saliency when the checkpoint was trained so and --features is
 * given, else random; the mask key comes from --seed). Three rows, one per view (orthographic, axes
 * (x,y), (z,x), (y,z)); three columns: the visible tokens' points (grey), the visible points with the
 * reconstruction of the masked tokens (blue), the visible points with the masked ground truth (red).
 * The sample's Chamfer distance (the 3D loss of this sample) is returned.
 */
#ifndef I2P_RENDER_REC_H
#define I2P_RENDER_REC_H

typedef struct {
    const char *checkpoint; /* i2pmae pretrain checkpoint */
    const char *input;      /* point-cloud dataset */
    const char *features;   /* features file of the dataset (saliency for 2D-guided masking) or NULL/"" */
    const char *output;     /* PNG to write */
    long sample;
    long seed;              /* mask key stream */
    int size;               /* side of one panel in pixels */
} render_rec_options;

typedef struct {
    double chamfer;         /* the sample's Chamfer-L2 over its masked scale-1 tokens */
    long n_visible, n_masked; /* points drawn in each set */
    int guided;             /* 1 if the mask came from the saliency */
} render_rec_result;

/* One process (MPI_COMM_SELF). Errors name the file or option; a checkpoint whose network does not
 * fit the data (more points than the samples have) is refused. */
int render_reconstruction(const render_rec_options *o, render_rec_result *r, char *err);

#endif
