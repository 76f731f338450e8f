/* cli_extract.c -- `i2pmae extract`: not implemented yet (says so and exits non-zero). */
#include "commands.h"

int cmd_extract(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_not_implemented("extract");
}
