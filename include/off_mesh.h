/* off_mesh.h -- OFF triangle/polygon meshes (the raw ModelNet40 layout) and area-weighted uniform
 * surface sampling.
 *
 * Accepts "OFF" on its own line or glued to the counts ("OFF1234 567 0", as in some ModelNet40
 * files), '#' comments, polygons with >= 3 vertices (fan-triangulated) and trailing colour values.
 * The text variants of Geomview's OFF are read too: the header keyword [ST][C][N][n]OFF announces
 * per-vertex normals (N), colours (C, RGB or RGBA) and texture coordinates (ST) after x y z, and a
 * dimension line (nOFF, which must say 3); only x y z are used. Refused with an error naming the
 * variant and the file: 4-D vertices (4OFF, 4nOFF ...), nOFF of another dimension, binary OFF and
 * any other keyword.
 */
#ifndef I2P_OFF_MESH_H
#define I2P_OFF_MESH_H

#include <stdint.h>

typedef struct {
    long n_vertices, n_triangles;
    double *vertices;   /* (n_vertices,3) */
    int32_t *triangles; /* (n_triangles,3) vertex indices */
} off_mesh;

/* Parses path; errors name the file, the line and the problem. Caller frees with off_mesh_free. */
int off_mesh_read(const char *path, off_mesh *m, char *err);
void off_mesh_free(off_mesh *m);

/* Samples P points uniformly over the surface (triangle chosen with probability proportional to
 * its area, then a uniform barycentric point), from rng stream (seed, stream). out is (P,3).
 * Fails if the mesh has no area. */
int off_mesh_sample(const off_mesh *m, long P, uint64_t seed, uint64_t stream, float *out,
                    const char *path, char *err);

#endif
