/* cli_synth.c -- `i2pmae synth`: not implemented yet (says so and exits non-zero). */
#include "commands.h"

int cmd_synth(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_not_implemented("synth");
}
