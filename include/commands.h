/* commands.h -- how a subcommand is defined, and the one driver that runs every command.
 *
 * A command is one constant i2p_command (in its src/cli_<name>.c) and its entry in i2p_commands
 * (src/commands.c), which is also the list of INI sections that other commands skip. cmd_main runs
 * the phases in this order, on every rank:
 *   options   sets the defaults in the command's state and lists its options (cli.h);
 *   parse     cli_parse: defaults, --config FILE, command line; --help prints and exits 0;
 *   check     usage errors (options are the same on every rank, so every rank agrees): rank 0
 *             prints "i2pmae: error: <err>", exit status 2;
 *   run       the work (collective over MPI_COMM_WORLD); a failure on any rank is agreed on every
 *             rank, rank 0 prints it, exit status 1; a run that returns PREEMPT_STOPPED on every
 *             rank (stopped by SIGTERM / SIGUSR1 after saving its state, preempt.h) exits with
 *             I2P_EXIT_PREEMPTED (75) and no summary;
 *   summarise adds the command's figures to the JSON line {"i2pmae", "command", "ranks",
 *             "threads", ...} that rank 0 prints last (summary.h).
 * The state is a zeroed block of `state_size` bytes that cmd_main owns: the command's options and
 * what run found for the summary. A command that keeps heap memory in it frees it in run (on
 * failure) or in summarise.
 */
#ifndef I2P_COMMANDS_H
#define I2P_COMMANDS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "cli.h"

#define CMD_MAX_OPTS 64 /* entries of a command's option table, model options included */

/* What run and summarise know besides the state. */
typedef struct {
    int rank, size;          /* in MPI_COMM_WORLD */
    const cli_cmd *cli;      /* the parsed option table (cli_values_json for provenance) */
    const cli_common *common; /* positional arguments, --verbose, --config */
} cmd_env;

typedef struct {
    const char *name;        /* the command word and its INI section, e.g. "synth" */
    const char *summary;     /* one line for `i2pmae --help` and the top of `--help` */
    const char *usage;       /* e.g. "i2pmae synth --samples N --points P -o FILE [options]" */
    const char *description; /* a paragraph printed by --help; may be NULL */
    int n_positional;        /* positional arguments required (1 for `info FILE`) */
    size_t state_size;       /* bytes of the command's state struct */
    /* 1: SIGTERM / SIGUSR1 stop the run cleanly (preempt.h); main catches them from process start,
     * before MPI_Init, so one during set-up is held for the run's first safe point. 0: the
     * signals keep their default action (they end the process). */
    int preemptible;
    /* Stores the defaults into state and writes the option table (pointing into state) to opts
     * (room for CMD_MAX_OPTS); returns the number of entries (cmd_opts_add). */
    int (*options)(void *state, cli_opt *opts);
    /* Usage errors: 0, or -1 with err set. May complete the state (e.g. "auto" values). */
    int (*check)(void *state, char *err);
    /* The work: 0, or -1 with err set. Collective over MPI_COMM_WORLD. */
    int (*run)(void *state, const cmd_env *env, char *err);
    /* Adds the command's fields to the summary object s; called after a successful run. */
    void (*summarise)(void *state, const cmd_env *env, cJSON *s);
} i2p_command;

/* Every command, in the order `i2pmae --help` lists them; NULL-terminated (src/commands.c). */
extern const i2p_command *const i2p_commands[];

/* The command named name, or NULL. */
const i2p_command *cmd_find(const char *name);

/* 1 if [name] is the INI section of a command or of a script ([bench], [scaling]), else 0. */
int cmd_ini_section(const char *name);

/* Runs cmd (argv[0] is the command word) and returns the process exit status, the same on every
 * rank: 0 ok (or --help), 1 failure (already printed), 2 usage error (already printed). */
int cmd_main(const i2p_command *cmd, int argc, char **argv);

/* Appends add[0..n_add) to opts, which holds n entries; returns the new count, or -1 if it would
 * pass CMD_MAX_OPTS (cmd_main reports it). Commands build their table with it:
 *   return cmd_opts_add(opts, 0, own, (int)(sizeof own / sizeof own[0]));       */
int cmd_opts_add(cli_opt *opts, int n, const cli_opt *add, int n_add);

#endif
