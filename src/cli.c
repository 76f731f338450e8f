/* cli.c -- option tables, INI config files and the command line (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "errors.h"

static const cli_opt *find_opt(const cli_cmd *cmd, const char *name)
{
    for (int i = 0; i < cmd->n_opts; i++)
        if (strcmp(cmd->opts[i].name, name) == 0) return &cmd->opts[i];
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* Stores value into the option's variable; returns -1 with a message (without location) on error. */
static int set_value(const cli_opt *o, const char *value, char *err)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case OPT_INT:
    case OPT_LONG: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end != 0)
            return errf(err, "--%s: '%s' is not an integer", o->name, value);
        if (o->type == OPT_INT) {
            if (v < -2147483647L || v > 2147483647L)
                return errf(err, "--%s: '%s' is out of range", o->name, value);
            *(int *)o->ptr = (int)v;
        } else {
            *(long *)o->ptr = v;
        }
        return 0;
    }
    case OPT_DOUBLE: {
        double v = strtod(value, &end);
        if (errno || end == value || *end != 0)
            return errf(err, "--%s: '%s' is not a number", o->name, value);
        *(double *)o->ptr = v;
        return 0;
    }
    case OPT_STRING:
        if (strlen(value) >= CLI_STR_LEN) return errf(err, "--%s: value too long", o->name);
        snprintf((char *)o->ptr, CLI_STR_LEN, "%s", value);
        return 0;
    case OPT_FLAG:
        if (parse_bool(value, (int *)o->ptr))
            return errf(err, "--%s: '%s' is not a boolean (true/false/1/0/yes/no)", o->name, value);
        return 0;
    }
    return errf(err, "--%s: unknown option type", o->name);
}

/* Debian's libinih is built without line numbers in the callback, so the reader counts lines. */
typedef struct {
    const cli_cmd *cmd;
    cli_common *common;
    const char *path;
    char *err;
    int failed;
    FILE *fp;
    int lineno;
} ini_ctx;

static char *ini_read_line(char *str, int num, void *stream)
{
    ini_ctx *c = stream;
    char *r = fgets(str, num, c->fp);
    if (r) c->lineno++;
    return r;
}

static int ini_on_key(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *c = user;
    int lineno = c->lineno;
    if (c->failed) return 0;
    if (section[0] && strcmp(section, c->cmd->name) != 0) {
        if (c->cmd->other_section && c->cmd->other_section(section)) return 1;
        errf(c->err, "%s:%d: unknown section [%s]", c->path, lineno, section);
        c->failed = 1;
        return 0;
    }
    if (!strcmp(name, "verbose")) {
        if (parse_bool(value, &c->common->verbose)) {
            errf(c->err, "%s:%d: verbose: '%s' is not a boolean", c->path, lineno, value);
            c->failed = 1;
            return 0;
        }
        return 1;
    }
    const cli_opt *o = find_opt(c->cmd, name);
    if (!o) {
        errf(c->err, "%s:%d: unknown key '%s' for '%s'", c->path, lineno, name, c->cmd->name);
        c->failed = 1;
        return 0;
    }
    char msg[I2P_ERR_LEN];
    if (set_value(o, value, msg)) {
        errf(c->err, "%s:%d: %s", c->path, lineno, msg);
        c->failed = 1;
        return 0;
    }
    return 1;
}

static int load_config(const cli_cmd *cmd, cli_common *common, const char *path, char *err)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return errf(err, "%s: cannot open config file: %s", path, strerror(errno));
    struct stat st; /* a directory opens, and reads as an empty file */
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(fp);
        return errf(err, "%s: config file is a directory", path);
    }
    ini_ctx c = {cmd, common, path, err, 0, fp, 0};
    int rc = ini_parse_stream(ini_read_line, &c, ini_on_key, &c);
    int read_error = ferror(fp);
    fclose(fp);
    if (c.failed) return -1;
    if (read_error) return errf(err, "%s: cannot read config file", path);
    if (rc > 0) return errf(err, "%s:%d: malformed line", path, rc);
    if (rc < 0) return errf(err, "%s: cannot parse config file", path);
    return 0;
}

int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_common *common, char *err)
{
    memset(common, 0, sizeof *common);
    /* Pass 1: --help and --config come first whatever their position. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_print_help(cmd);
            common->help_shown = 1;
            return 0;
        }
        if (!strcmp(argv[i], "--")) break;
        if (!strncmp(argv[i], "--config=", 9)) {
            snprintf(common->config, CLI_STR_LEN, "%s", argv[i] + 9);
        } else if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) return errf(err, "--config: missing FILE");
            snprintf(common->config, CLI_STR_LEN, "%s", argv[++i]);
        }
    }
    if (common->config[0] && load_config(cmd, common, common->config, err)) return -1;

    /* Pass 2: the command line overrides the config file. */
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || !strcmp(a, "-")) {
            if (common->n_positional >= 8) return errf(err, "too many arguments");
            common->positional[common->n_positional++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) { only_positional = 1; continue; }
        if (!strcmp(a, "-o") && find_opt(cmd, "output")) a = "--output"; /* the one short alias */
        if (a[1] != '-') return errf(err, "unknown option '%s' (options are long: --name)", a);
        char name[256];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (len >= sizeof name) return errf(err, "option too long: '%s'", a);
        memcpy(name, a + 2, len);
        name[len] = 0;
        if (!strcmp(name, "config")) { if (!eq) i++; continue; }
        if (!strcmp(name, "verbose")) { common->verbose = 1; continue; }
        const cli_opt *o = find_opt(cmd, name);
        if (!o) return errf(err, "unknown option '--%s' for '%s' (see: i2pmae %s --help)", name,
                            cmd->name, cmd->name);
        if (o->type == OPT_FLAG && !eq) {
            *(int *)o->ptr = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) return errf(err, "--%s: missing %s", name, o->meta ? o->meta : "value");
            value = argv[++i];
        }
        if (set_value(o, value, err)) return -1;
    }
    if (common->n_positional != cmd->n_positional)
        return errf(err, "'%s' takes %d argument%s, got %d (see: i2pmae %s --help)", cmd->name,
                    cmd->n_positional, cmd->n_positional == 1 ? "" : "s", common->n_positional,
                    cmd->name);
    return 0;
}

static void format_default(const cli_opt *o, char *out, size_t n)
{
    out[0] = 0;
    switch (o->type) {
    case OPT_INT: snprintf(out, n, " [default: %d]", *(int *)o->ptr); break;
    case OPT_LONG: snprintf(out, n, " [default: %ld]", *(long *)o->ptr); break;
    case OPT_DOUBLE: snprintf(out, n, " [default: %g]", *(double *)o->ptr); break;
    case OPT_STRING:
        if (((char *)o->ptr)[0]) snprintf(out, n, " [default: %s]", (char *)o->ptr);
        break;
    case OPT_FLAG: break;
    }
}

void cli_print_help(const cli_cmd *cmd)
{
    printf("usage: %s\n\n%s\n", cmd->usage, cmd->summary);
    if (cmd->description) printf("\n%s\n", cmd->description);
    printf("\noptions:\n");
    for (int i = 0; i < cmd->n_opts; i++) {
        const cli_opt *o = &cmd->opts[i];
        char left[128], def[CLI_STR_LEN + 32];
        snprintf(left, sizeof left, "%s--%s%s%s", strcmp(o->name, "output") ? "" : "-o, ", o->name,
                 o->meta ? " " : "", o->meta ? o->meta : "");
        format_default(o, def, sizeof def);
        printf("  %-26s %s%s\n", left, o->help, def);
    }
    printf("  %-26s %s\n", "--config FILE",
           "read options from an INI file (keys = option names; command line wins)");
    printf("  %-26s %s\n", "--verbose", "log from every rank, with rank prefixes");
    printf("  %-26s %s\n", "--help", "show this help");
}

cJSON *cli_values_json(const cli_cmd *cmd)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < cmd->n_opts; i++) {
        const cli_opt *p = &cmd->opts[i];
        switch (p->type) {
        case OPT_INT: cJSON_AddNumberToObject(o, p->name, *(int *)p->ptr); break;
        case OPT_LONG: cJSON_AddNumberToObject(o, p->name, (double)*(long *)p->ptr); break;
        case OPT_DOUBLE: cJSON_AddNumberToObject(o, p->name, *(double *)p->ptr); break;
        case OPT_STRING: cJSON_AddStringToObject(o, p->name, (char *)p->ptr); break;
        case OPT_FLAG: cJSON_AddBoolToObject(o, p->name, *(int *)p->ptr); break;
        }
    }
    return o;
}
