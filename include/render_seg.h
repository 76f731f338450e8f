/* render_seg.h -- the picture of one shape's part segmentation (`i2pmae render --segmentation`), so
 * users see where the network's parts go wrong.
 *
 * Input: a predictions file of `partseg --eval-only` (/points (N,P,3), /seg and /pred (N,P) part
 * labels). Three rows, one per view (orthographic, axes (x,y), (z,x), (y,z), as render_rec.h);
 * two columns: the points coloured by their true part, and by the predicted part. A part's colour
 * is a fixed palette entry of its label (palette of 12; the parts of one ShapeNetPart category are
 * consecutive labels, so they differ). Panels are S x S pixels on white, separated by 4 px.
 */
#ifndef I2P_RENDER_SEG_H
#define I2P_RENDER_SEG_H

typedef struct {
    const char *predictions; /* partseg --eval-only predictions file */
    const char *output;      /* PNG to write */
    long sample;
    int size;                /* side of one panel in pixels */
} render_seg_options;

typedef struct {
    long points;             /* points drawn per panel */
    long correct;            /* points whose predicted part is the true one */
    int category;
} render_seg_result;

/* One process (MPI_COMM_SELF). Errors name the file or option ("--sample 7: FILE has samples
 * 0..3"). */
int render_segmentation(const render_seg_options *o, render_seg_result *r, char *err);

#endif
