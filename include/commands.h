/* commands.h -- the subcommands dispatched by main. Each returns the process exit status
 * (0 ok, 1 error already reported, 2 usage error) and must return the same status on every rank. */
#ifndef I2P_COMMANDS_H
#define I2P_COMMANDS_H

#include "cli.h"

int cmd_synth(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_vit(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_svm(int argc, char **argv);
int cmd_finetune(int argc, char **argv);

/* The common start of a command (src/cmd_start.c): world rank and size, cli_parse, --verbose.
 * Returns 0 to go on, 1 after --help was printed (the command returns 0), -1 after a usage error
 * was printed on rank 0 (the command returns 2). */
int cmd_start(const cli_cmd *cmd, int argc, char **argv, cli_common *common, int *rank, int *size);

/* Shared by the stubs of unimplemented commands: prints the error and returns 2. */
int cmd_not_implemented(const char *name);

#endif
