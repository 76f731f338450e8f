/* png_write.c -- PNG output through libpng (see png_write.h). */
#include "png_write.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>

#include "atomic_file.h"
#include "errors.h"

typedef struct {
    char msg[256];
} png_error_state;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_error_state *st = png_get_error_ptr(png);
    snprintf(st->msg, sizeof st->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Encodes into an open FILE; returns 0 or -1 with st->msg set. Kept separate from the setjmp so no
 * local of the caller is live across the longjmp. */
static int encode(FILE *fp, int width, int height, const uint8_t *rgb, png_error_state *st)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, st, on_png_error, on_png_warning);
    if (!png) {
        snprintf(st->msg, sizeof st->msg, "libpng: cannot create write struct");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        if (!st->msg[0]) snprintf(st->msg, sizeof st->msg, "libpng: cannot create info struct");
        png_destroy_write_struct(&png, info ? &info : NULL);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * width * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int png_write_rgb(const char *path, int width, int height, const uint8_t *rgb, char *err)
{
    if (width < 1 || height < 1) return errf(err, "%s: empty picture (%dx%d)", path, width, height);
    atomic_file out;
    if (atomic_file_open(&out, path, err)) return -1;
    png_error_state st = {{0}};
    if (encode(out.f, width, height, rgb, &st)) {
        atomic_file_abort(&out);
        return errf(err, "%s: %s", path, st.msg);
    }
    return atomic_file_commit(&out, err);
}
