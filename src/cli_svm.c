/* cli_svm.c -- `i2pmae svm`: not implemented yet (says so and exits non-zero). */
#include "commands.h"

int cmd_svm(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_not_implemented("svm");
}
