/* cli_finetune.c -- `i2pmae finetune`: not implemented yet (says so and exits non-zero). */
#include "commands.h"

int cmd_finetune(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_not_implemented("finetune");
}
