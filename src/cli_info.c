/* cli_info.c -- `i2pmae info`: not implemented yet (says so and exits non-zero). */
#include "commands.h"

int cmd_info(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_not_implemented("info");
}
