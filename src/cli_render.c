/* cli_render.c -- `i2pmae render`: not implemented yet (says so and exits non-zero). */
#include "commands.h"

int cmd_render(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_not_implemented("render");
}
