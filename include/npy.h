/* npy.h -- reading NumPy .npy files of points (the ShapeNet-55 `shapenet_pc/<id>.npy` layout).
 *
 * Supports format versions 1.0, 2.0 and 3.0, C order, little-endian float32 ('<f4') or float64
 * ('<f8', converted), shape (P,3). Anything else is an error naming the file and the problem.
 */
#ifndef I2P_NPY_H
#define I2P_NPY_H

/* Reads the header only: *points = P. */
int npy_points_count(const char *path, long *points, char *err);
/* Reads the whole (P,3) array as float32 into a malloc'ed buffer *pts (caller frees). */
int npy_read_points(const char *path, float **pts, long *points, char *err);

#endif
