/* fuzz_cli_common.h -- shared by fuzz_argv.c and fuzz_ini.c: runs one real command's option
 * phases (defaults and table, cli_parse, check: what cmd_main does before `run`) on given argv. */
#ifndef I2P_FUZZ_CLI_COMMON_H
#define I2P_FUZZ_CLI_COMMON_H

#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "errors.h"

static int fuzz_n_commands(void)
{
    int n = 0;
    while (i2p_commands[n]) n++;
    return n;
}

/* Options, parse and check of command number `which` (mod the number of commands). */
static void fuzz_cli_run(unsigned which, int argc, char **argv)
{
    const i2p_command *c = i2p_commands[which % (unsigned)fuzz_n_commands()];
    void *state = calloc(1, c->state_size ? c->state_size : 1);
    cli_opt *opts = calloc(CMD_MAX_OPTS, sizeof *opts);
    if (!state || !opts) abort();
    int n_opts = c->options ? c->options(state, opts) : 0;
    if (n_opts < 0) abort();
    cli_cmd cli = {.name = c->name, .summary = c->summary, .usage = c->usage,
                   .description = c->description, .opts = opts, .n_opts = n_opts,
                   .n_positional = c->n_positional, .other_section = cmd_ini_section};
    cli_common common;
    char err[I2P_ERR_LEN];
    argv[0] = (char *)c->name;
    if (cli_parse(&cli, argc, argv, &common, err) == 0 && !common.help_shown && c->check)
        c->check(state, err);
    free(state);
    free(opts);
}

#endif
