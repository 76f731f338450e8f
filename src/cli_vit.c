/* cli_vit.c -- `i2pmae vit`: not implemented yet (says so and exits non-zero). */
#include "commands.h"

int cmd_vit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_not_implemented("vit");
}
