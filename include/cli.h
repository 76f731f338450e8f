/* cli.h -- options of a subcommand: defaults, then a config file (INI, libinih), then the command line.
 *
 * Each subcommand describes its options in a table of cli_opt. cli_parse fills the variables the
 * table points to, in this order: the defaults already stored there, then `--config FILE` (keys in
 * the global section or in a section named after the subcommand; sections named after other
 * subcommands are skipped, so one .ini can configure a whole workflow), then the command line.
 * Every command also gets --config FILE, --verbose and --help. An unknown option, unknown key,
 * unknown section or a malformed value is an error naming the option (and file:line for INI).
 * Long options only, `--name value` or `--name=value`; INI keys are the option names. The one
 * exception: `-o FILE` is accepted for `--output FILE` in commands that have an "output" option.
 */
#ifndef I2P_CLI_H
#define I2P_CLI_H

#include <cjson/cJSON.h>

#define CLI_STR_LEN 4096

typedef enum { OPT_INT, OPT_LONG, OPT_DOUBLE, OPT_STRING, OPT_FLAG } cli_opt_type;

typedef struct {
    const char *name;   /* long name without "--" and INI key */
    cli_opt_type type;  /* OPT_INT: int*, OPT_LONG: long*, OPT_DOUBLE: double*,
                           OPT_STRING: char[CLI_STR_LEN], OPT_FLAG: int* (0/1) */
    void *ptr;
    const char *meta;   /* e.g. "FILE", "N"; NULL for flags */
    const char *help;   /* one line; the default is appended automatically */
} cli_opt;

typedef struct {
    const char *name;        /* subcommand, e.g. "synth" */
    const char *summary;     /* one line for `i2pmae --help` */
    const char *usage;       /* e.g. "i2pmae synth --samples N --points P -o FILE [options]" */
    const char *description; /* a paragraph printed by --help; may be NULL */
    const cli_opt *opts;
    int n_opts;
    int n_positional;        /* positional arguments required (e.g. 1 for `info FILE`) */
    /* 1 if an INI section [name] belongs to another command or tool, so this one skips it; an
     * unknown section is an error. NULL: every other section is unknown. */
    int (*other_section)(const char *name);
} cli_cmd;

typedef struct {
    int verbose;
    char config[CLI_STR_LEN];
    int help_shown;          /* 1 if --help was given: the caller exits 0 */
    char *positional[8];     /* pointers into argv */
    int n_positional;
} cli_common;

/* Returns 0 on success (or after printing --help: common->help_shown = 1), -1 with err set. */
int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_common *common, char *err);

/* Prints the --help text of cmd to stdout. */
void cli_print_help(const cli_cmd *cmd);

/* A JSON object {option: value} of all current values (for provenance attributes and summaries).
 * Caller owns the result (cJSON_Delete). */
cJSON *cli_values_json(const cli_cmd *cmd);

#endif
