/* synth.c -- surface samplers of the parametric shape classes and the per-sample augmentation
 * (see synth.h). Shapes are built around the origin with extent about 1; exact uniformity of the
 * surface density is not a goal except where it is cheap (areas weight the pieces). */
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pointops.h"
#include "rng.h"

static const char *const class_names[SYNTH_N_CLASSES] = {
    "sphere", "cube", "cylinder", "cone", "torus", "pyramid",
    "plane", "capsule", "ellipsoid", "helix", "octahedron", "annulus"};

void synth_class_names(char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (int c = 0; c < SYNTH_N_CLASSES && len < n; c++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", c ? "\n" : "", class_names[c]);
}

/* ---- surface samplers: one point p[3] per call ---- */

static void unit_vector(rng_t *r, double *p)
{
    double s;
    do {
        for (int d = 0; d < 3; d++) p[d] = rng_normal(r);
        s = sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
    } while (s < 1e-12);
    for (int d = 0; d < 3; d++) p[d] /= s;
}

/* Uniform point in triangle (a, b, c). */
static void triangle_point(rng_t *r, const double *a, const double *b, const double *c, double *p)
{
    double u = rng_uniform(r), v = rng_uniform(r);
    if (u + v > 1) { u = 1 - u; v = 1 - v; }
    for (int d = 0; d < 3; d++) p[d] = a[d] + u * (b[d] - a[d]) + v * (c[d] - a[d]);
}

static void disk_point(rng_t *r, double radius, double z, double *p)
{
    double rr = radius * sqrt(rng_uniform(r)), t = 2 * M_PI * rng_uniform(r);
    p[0] = rr * cos(t);
    p[1] = rr * sin(t);
    p[2] = z;
}

static void sample_sphere(rng_t *r, double *p) { unit_vector(r, p); }

static void sample_cube(rng_t *r, double *p)
{
    int face = (int)rng_below(r, 6), axis = face / 2;
    for (int d = 0; d < 3; d++) p[d] = rng_range(r, -1, 1);
    p[axis] = face % 2 ? 1.0 : -1.0;
}

/* Side of a cylinder of radius rad between z0 and z1. */
static void tube_point(rng_t *r, double rad, double z0, double z1, double *p)
{
    double t = 2 * M_PI * rng_uniform(r);
    p[0] = rad * cos(t);
    p[1] = rad * sin(t);
    p[2] = rng_range(r, z0, z1);
}

static void sample_cylinder(rng_t *r, double *p)
{
    const double rad = 0.5, h = 2.0;
    double side = 2 * M_PI * rad * h, cap = M_PI * rad * rad;
    double u = rng_uniform(r) * (side + 2 * cap);
    if (u < side) tube_point(r, rad, -h / 2, h / 2, p);
    else disk_point(r, rad, u < side + cap ? -h / 2 : h / 2, p);
}

static void sample_cone(rng_t *r, double *p)
{
    const double R = 1.0, h = 2.0;
    double lateral = M_PI * R * sqrt(R * R + h * h), base = M_PI * R * R;
    if (rng_uniform(r) * (lateral + base) < lateral) {
        double t = sqrt(rng_uniform(r)), a = 2 * M_PI * rng_uniform(r); /* t: distance from apex */
        p[0] = t * R * cos(a);
        p[1] = t * R * sin(a);
        p[2] = h / 2 - t * h;
    } else {
        disk_point(r, R, -h / 2, p);
    }
}

static void sample_torus(rng_t *r, double *p)
{
    const double R = 1.0, a = 0.35;
    double u, v;
    do { /* accept with probability proportional to the area element */
        u = 2 * M_PI * rng_uniform(r);
        v = 2 * M_PI * rng_uniform(r);
    } while (rng_uniform(r) * (R + a) > R + a * cos(v));
    p[0] = (R + a * cos(v)) * cos(u);
    p[1] = (R + a * cos(v)) * sin(u);
    p[2] = a * sin(v);
}

static void sample_pyramid(rng_t *r, double *p)
{
    static const double apex[3] = {0, 0, 1};
    static const double base[4][3] = {{-1, -1, -1}, {1, -1, -1}, {1, 1, -1}, {-1, 1, -1}};
    const double side = 2.0 * sqrt(5.0), bottom = 4.0; /* one side face: 0.5 * 2 * sqrt(1 + 4) */
    double u = rng_uniform(r) * (4 * side + bottom);
    if (u < 4 * side) {
        int f = (int)(u / side);
        if (f > 3) f = 3;
        triangle_point(r, base[f], base[(f + 1) % 4], apex, p);
    } else {
        p[0] = rng_range(r, -1, 1);
        p[1] = rng_range(r, -1, 1);
        p[2] = -1;
    }
}

static void sample_plane(rng_t *r, double *p)
{
    p[0] = rng_range(r, -1, 1);
    p[1] = rng_range(r, -1, 1);
    p[2] = 0;
}

static void sample_capsule(rng_t *r, double *p)
{
    const double rad = 0.5, h = 1.5;
    double side = 2 * M_PI * rad * h, ends = 4 * M_PI * rad * rad;
    if (rng_uniform(r) * (side + ends) < side) {
        tube_point(r, rad, -h / 2, h / 2, p);
    } else {
        unit_vector(r, p);
        for (int d = 0; d < 3; d++) p[d] *= rad;
        p[2] += p[2] >= 0 ? h / 2 : -h / 2;
    }
}

static void sample_ellipsoid(rng_t *r, double *p)
{
    unit_vector(r, p);
    p[1] *= 0.6;
    p[2] *= 0.35;
}

static void sample_helix(rng_t *r, double *p)
{
    const double turns = 2.5, tube = 0.08, rise = 1.6;
    double t = rng_uniform(r), a = 2 * M_PI * turns * t;
    double off[3];
    unit_vector(r, off);
    p[0] = cos(a) + tube * off[0];
    p[1] = sin(a) + tube * off[1];
    p[2] = rise * (t - 0.5) + tube * off[2];
}

static void sample_octahedron(rng_t *r, double *p)
{
    double e[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    uint64_t signs = rng_below(r, 8);
    for (int d = 0; d < 3; d++)
        if (signs >> d & 1) e[d][d] = -1;
    triangle_point(r, e[0], e[1], e[2], p);
}

static void sample_annulus(rng_t *r, double *p)
{
    const double r0 = 0.5, r1 = 1.0;
    double rr = sqrt(rng_range(r, r0 * r0, r1 * r1)), t = 2 * M_PI * rng_uniform(r);
    p[0] = rr * cos(t);
    p[1] = rr * sin(t);
    p[2] = 0;
}

typedef void (*surface_fn)(rng_t *r, double *p);
static const surface_fn samplers[SYNTH_N_CLASSES] = {
    sample_sphere, sample_cube, sample_cylinder, sample_cone, sample_torus, sample_pyramid,
    sample_plane, sample_capsule, sample_ellipsoid, sample_helix, sample_octahedron, sample_annulus};

/* Uniform random rotation matrix from a uniform unit quaternion. */
static void random_rotation(rng_t *r, double R[3][3])
{
    double q[4], s;
    do {
        s = 0;
        for (int i = 0; i < 4; i++) { q[i] = rng_normal(r); s += q[i] * q[i]; }
    } while (s < 1e-12);
    s = sqrt(s);
    double w = q[0] / s, x = q[1] / s, y = q[2] / s, z = q[3] / s;
    R[0][0] = 1 - 2 * (y * y + z * z); R[0][1] = 2 * (x * y - w * z);     R[0][2] = 2 * (x * z + w * y);
    R[1][0] = 2 * (x * y + w * z);     R[1][1] = 1 - 2 * (x * x + z * z); R[1][2] = 2 * (y * z - w * x);
    R[2][0] = 2 * (x * z - w * y);     R[2][1] = 2 * (y * z + w * x);     R[2][2] = 1 - 2 * (x * x + y * y);
}

void synth_sample(uint64_t seed, long i, long P, float *pts, int32_t *label)
{
    rng_t r;
    rng_seed(&r, seed, (uint64_t)i);
    int c = (int)(i % SYNTH_N_CLASSES);
    double scale[3], R[3][3];
    for (int d = 0; d < 3; d++) scale[d] = rng_range(&r, 0.75, 1.25);
    random_rotation(&r, R);
    for (long k = 0; k < P; k++) {
        double p[3], q[3];
        samplers[c](&r, p);
        for (int d = 0; d < 3; d++) p[d] *= scale[d];
        for (int d = 0; d < 3; d++)
            q[d] = R[d][0] * p[0] + R[d][1] * p[1] + R[d][2] * p[2] + 0.01 * rng_normal(&r);
        for (int d = 0; d < 3; d++) pts[3 * k + d] = (float)q[d];
    }
    pc_normalize_unit_sphere(pts, P);
    *label = c;
}

/* ---- the parts-labelled set ---- */

typedef struct {
    const char *name;
    int n_parts;
    const char *parts[3];
    double odds[3];       /* chance that a point falls on each part */
} part_category;

static const part_category part_categories[SYNTH_PART_CATEGORIES] = {
    {"capsule", 2, {"body", "ends"}, {0.6, 0.4}},
    {"cone", 2, {"side", "base"}, {0.65, 0.35}},
    {"cylinder", 2, {"side", "caps"}, {0.65, 0.35}},
    {"table", 2, {"top", "legs"}, {0.6, 0.4}},
    {"lamp", 3, {"shade", "stem", "base"}, {0.5, 0.25, 0.25}},
    {"airplane", 3, {"fuselage", "wings", "tail"}, {0.45, 0.4, 0.15}},
};

void synth_part_category_names(char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (int c = 0; c < SYNTH_PART_CATEGORIES && len < n; c++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", c ? "\n" : "", part_categories[c].name);
}

void synth_part_counts(int counts[SYNTH_PART_CATEGORIES])
{
    for (int c = 0; c < SYNTH_PART_CATEGORIES; c++) counts[c] = part_categories[c].n_parts;
}

void synth_part_names(char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (int c = 0; c < SYNTH_PART_CATEGORIES; c++)
        for (int j = 0; j < part_categories[c].n_parts && len < n; j++)
            len += (size_t)snprintf(out + len, n - len, "%s%s/%s", len ? "\n" : "", part_categories[c].name,
                                    part_categories[c].parts[j]);
}

/* A point of part j of category c (shapes of extent about 1, z up). */
static void part_point(rng_t *r, int c, int j, double *p)
{
    switch (c) {
    case 0: /* capsule: tube, then the two hemispherical ends */
        if (j == 0) {
            tube_point(r, 0.5, -0.75, 0.75, p);
        } else {
            unit_vector(r, p);
            for (int d = 0; d < 3; d++) p[d] *= 0.5;
            p[2] += p[2] >= 0 ? 0.75 : -0.75;
        }
        break;
    case 1: /* cone: lateral surface, base disk */
        if (j == 0) {
            double t = sqrt(rng_uniform(r)), a = 2 * M_PI * rng_uniform(r);
            p[0] = t * cos(a);
            p[1] = t * sin(a);
            p[2] = 1.0 - 2.0 * t;
        } else {
            disk_point(r, 1.0, -1.0, p);
        }
        break;
    case 2: /* cylinder: side, both caps */
        if (j == 0) tube_point(r, 0.5, -1.0, 1.0, p);
        else disk_point(r, 0.5, rng_uniform(r) < 0.5 ? -1.0 : 1.0, p);
        break;
    case 3: /* table: a rectangular top, four thin legs */
        if (j == 0) {
            p[0] = rng_range(r, -1.0, 1.0);
            p[1] = rng_range(r, -0.6, 0.6);
            p[2] = 0.5;
        } else {
            int leg = (int)rng_below(r, 4);
            tube_point(r, 0.06, -0.8, 0.5, p);
            p[0] += leg & 1 ? 0.85 : -0.85;
            p[1] += leg & 2 ? 0.45 : -0.45;
        }
        break;
    case 4: /* lamp: a dome shade, a stem, a base disk */
        if (j == 0) {
            unit_vector(r, p);
            for (int d = 0; d < 3; d++) p[d] *= 0.8;
            p[2] = fabs(p[2]) + 0.2;
        } else if (j == 1) {
            tube_point(r, 0.12, -0.8, 0.2, p);
        } else {
            disk_point(r, 0.5, -0.8, p);
        }
        break;
    default: /* airplane along x: fuselage tube, wings plate, vertical tail fin */
        if (j == 0) {
            tube_point(r, 0.15, -1.0, 1.0, p);
            double x = p[2];
            p[2] = p[1];
            p[1] = p[0];
            p[0] = x;
        } else if (j == 1) {
            p[0] = rng_range(r, -0.2, 0.25);
            p[1] = rng_range(r, -1.0, 1.0);
            p[2] = 0;
        } else {
            p[0] = rng_range(r, -1.0, -0.7);
            p[1] = 0;
            p[2] = rng_range(r, 0.1, 0.5);
        }
        break;
    }
}

void synth_parts_sample(uint64_t seed, long i, long P, float *pts, int32_t *category, int32_t *seg)
{
    rng_t r;
    rng_seed(&r, seed, (uint64_t)i);
    int c = (int)(i % SYNTH_PART_CATEGORIES), first = 0;
    for (int k = 0; k < c; k++) first += part_categories[k].n_parts;
    const part_category *pc = &part_categories[c];
    double scale[3];
    for (int d = 0; d < 3; d++) scale[d] = rng_range(&r, 0.8, 1.2);
    for (long k = 0; k < P; k++) {
        double u = rng_uniform(&r), acc = 0, p[3];
        int j = pc->n_parts - 1;
        for (int q = 0; q < pc->n_parts - 1; q++) {
            acc += pc->odds[q];
            if (u < acc) { j = q; break; }
        }
        part_point(&r, c, j, p);
        for (int d = 0; d < 3; d++) pts[3 * k + d] = (float)(p[d] * scale[d] + 0.01 * rng_normal(&r));
        seg[k] = first + j;
    }
    pc_normalize_unit_sphere(pts, P);
    *category = c;
}
