/* ref_python.h -- for the unit tests that compare with a Python reference (a script in tests/ref, run
 * with /usr/bin/python3): a reference whose modules are missing is a SKIP that says which; a
 * reference that is there but fails is a failure, never a skip. */
#ifndef I2P_TEST_REF_PYTHON_H
#define I2P_TEST_REF_PYTHON_H

#include <stdio.h>
#include <stdlib.h>

/* 1 if /usr/bin/python3 imports every module of `modules` ("torch, h5py"); otherwise prints
 * "SKIP: <test>: python3 <modules> missing" (the line tests/run_all.sh shows) and returns 0. */
static int python_has_modules(const char *test, const char *modules)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import %s' > /dev/null 2>&1", modules);
    if (system(cmd) == 0) return 1;
    printf("SKIP: %s: python3 %s missing\n", test, modules);
    return 0;
}

/* Runs the shell command `cmd` (a reference script); 0 on exit status 0, else prints the command
 * and its status and returns -1. */
static int run_reference(const char *cmd)
{
    int st = system(cmd);
    if (st == 0) return 0;
    printf("reference failed (status %d): %s\n", st, cmd);
    return -1;
}

#endif
