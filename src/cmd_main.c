/* cmd_main.c -- the one driver of every command: options, check, run, summary (see commands.h). */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "dist.h"
#include "errors.h"
#include "log.h"
#include "preempt.h"
#include "summary.h"

int cmd_opts_add(cli_opt *opts, int n, const cli_opt *add, int n_add)
{
    if (n < 0 || n_add < 0 || n + n_add > CMD_MAX_OPTS) return -1;
    memcpy(opts + n, add, sizeof *add * (size_t)n_add);
    return n + n_add;
}

/* options, parse, check. Returns -1 to go on to run, else the exit status: 0 after --help, 2 after
 * a usage error (printed by rank 0; every rank sees the same options, so every rank agrees). */
static int start(const i2p_command *c, void *state, int argc, char **argv, cli_opt *opts,
                 cli_cmd *cli, cli_common *common, int rank)
{
    char err[I2P_ERR_LEN];
    int n_opts = c->options ? c->options(state, opts) : 0;
    *cli = (cli_cmd){.name = c->name, .summary = c->summary, .usage = c->usage,
                     .description = c->description, .opts = n_opts > 0 ? opts : NULL,
                     .n_opts = n_opts > 0 ? n_opts : 0, .n_positional = c->n_positional,
                     .other_section = cmd_ini_section};
    int rc = n_opts < 0 ? errf(err, "%s: more than %d options (CMD_MAX_OPTS)", c->name, CMD_MAX_OPTS)
                        : cli_parse(cli, argc, argv, common, err);
    if (!rc && common->help_shown) return 0;
    if (!rc) log_set_verbose(common->verbose);
    if (!rc && c->check) rc = c->check(state, err);
    if (!rc) return -1;
    if (rank == 0) log_error("%s", err);
    return 2;
}

int cmd_main(const i2p_command *c, int argc, char **argv)
{
    cmd_env env = {0};
    MPI_Comm_rank(MPI_COMM_WORLD, &env.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &env.size);
    char err[I2P_ERR_LEN];
    void *state = calloc(1, c->state_size ? c->state_size : 1);
    cli_opt *opts = calloc(CMD_MAX_OPTS, sizeof *opts);
    int rc = state && opts ? 0 : errf(err, "%s: out of memory", c->name);
    if (dist_any_error(MPI_COMM_WORLD, rc, err)) {
        if (env.rank == 0) log_error("%s", err);
        free(state);
        free(opts);
        return 1;
    }
    cli_cmd cli;
    cli_common common;
    int status = start(c, state, argc, argv, opts, &cli, &common, env.rank);
    if (status < 0) {
        env.cli = &cli;
        env.common = &common;
        rc = c->run(state, &env, err);
        int stopped = rc == PREEMPT_STOPPED, all_stopped = 0; /* decided collectively */
        MPI_Allreduce(&stopped, &all_stopped, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (all_stopped) {
            if (env.rank == 0)
                log_warn("%s: stopped by signal %d after saving its state; run the same command "
                         "again to go on (%s; exit status %d)", c->name, preempt_signal(),
                         strcmp(c->name, "extract") ? "with --resume" : "it skips what is done",
                         I2P_EXIT_PREEMPTED);
            status = I2P_EXIT_PREEMPTED;
        } else if (dist_any_error(MPI_COMM_WORLD, rc, err)) {
            if (env.rank == 0) log_error("%s", err);
            status = 1;
        } else {
            cJSON *s = summary_begin(c->name, env.size);
            if (c->summarise) c->summarise(state, &env, s);
            summary_add_peak_memory(s, MPI_COMM_WORLD);
            summary_emit(s, env.rank);
            status = 0;
        }
    }
    free(state);
    free(opts);
    return status;
}
