/* cli_convert.c -- `i2pmae convert`: not implemented yet (says so and exits non-zero). */
#include "commands.h"

int cmd_convert(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_not_implemented("convert");
}
