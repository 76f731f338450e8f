/* model_opts.h -- the 3D network's architecture as command options (pretrain, svm) and as JSON
 * (checkpoints).
 *
 * Options (INI keys in the global section, so one job file configures pretrain and svm alike):
 *   points, groups, k, dims, depths, heads, dec-dims, dec-depths, embed-hidden, mask-ratio, drop-path,
 *   fps-skip-origin
 * Lists are comma-separated ("512,256,64"). Every option is a string that stays empty when not
 * given: model_opts_apply overwrites only the fields given, so a command can start from the spec's
 * defaults (pretrain, svm --random-init) or from a checkpoint's configuration (svm --checkpoint) and
 * model_opts_check_against reports a given option that differs from a checkpoint.
 * The 2D side (views, feat_dim, grid, image) comes from the features file, not from options.
 */
#ifndef I2P_MODEL_OPTS_H
#define I2P_MODEL_OPTS_H

#include <cjson/cJSON.h>

#include "cli.h"
#include "model3d.h"

#define MODEL_OPTS_COUNT 12

typedef struct {
    char v[MODEL_OPTS_COUNT][CLI_STR_LEN]; /* "" = not given */
} model_opts;

/* Appends the MODEL_OPTS_COUNT option entries (pointing into o, which must outlive them) to opts,
 * which holds n entries and has room for CMD_MAX_OPTS (commands.h); returns the new count, or -1
 * if n < 0 or there is no room. */
int model_opts_append(model_opts *o, cli_opt *opts, int n);

/* The value given for option `name` ("" if not given), or NULL if no model option has that name. */
const char *model_opts_get(const model_opts *o, const char *name);
/* Sets option `name` to value ("" = not given); -1 for an unknown name or a value too long. */
int model_opts_set(model_opts *o, const char *name, const char *value);
/* Marks option `name` as not given (model_opts_set(o, name, "")). */
int model_opts_clear(model_opts *o, const char *name);

/* Overwrites the fields of c named by given options; errors name the option. */
int model_opts_apply(const model_opts *o, model3d_config *c, char *err);
/* The encoder of a fine-tuning network (finetune, partseg): model_opts_apply, then, unless dec-dims
 * was given, decoder widths dims[2], dims[1] (the decoder is not used; this keeps the configuration
 * a valid model3d one). */
int model_opts_apply_encoder(const model_opts *o, model3d_config *c, char *err);

/* "a,b,c", the value of option --opt, -> v[3], each a finite number >= 0; errors name the option. */
int model_opts_parse_triple(const char *opt, const char *s, double v[3], char *err);

/* Fails if a given option differs from c (what: e.g. the checkpoint path, for the message). */
int model_opts_check_against(const model_opts *o, const model3d_config *c, const char *what,
                             char *err);

/* The configuration as a JSON object (every field; arrays as JSON arrays; "visible" only when set,
 * so configurations without it read as before). Caller owns it. */
cJSON *model3d_config_to_json(const model3d_config *c);
/* Reads every field from such an object. fps_skip_origin may be absent: configurations written
 * before it existed were trained with plain FPS, so absent means 0. */
int model3d_config_from_json(const cJSON *j, model3d_config *c, char *err);

#endif
