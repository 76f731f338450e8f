/* cli_pretrain.c -- `i2pmae pretrain`: not implemented yet (says so and exits non-zero). */
#include "commands.h"

int cmd_pretrain(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_not_implemented("pretrain");
}
