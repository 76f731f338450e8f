/* test_commands.c -- the command table: every command is complete, its option table fits and has
 * no name twice (the command's own options and the model options are joined at run time), the
 * INI sections come from the same list; model options are found by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "errors.h"
#include "model_opts.h"

static void test_every_command_is_complete(void **state)
{
    (void)state;
    int n = 0;
    for (int i = 0; i2p_commands[i]; i++, n++) {
        const i2p_command *c = i2p_commands[i];
        assert_non_null(c->name);
        assert_non_null(c->summary);
        assert_non_null(c->usage);
        assert_non_null(c->run);
        assert_non_null(c->summarise);
        assert_true(c->state_size > 0);
        assert_ptr_equal(cmd_find(c->name), c);
        for (int j = 0; j < i; j++) assert_string_not_equal(i2p_commands[j]->name, c->name);
    }
    assert_int_equal(n, 14);
    assert_non_null(cmd_find("finetune"));
    assert_non_null(cmd_find("partseg"));
    assert_non_null(cmd_find("fewshot-split"));
    assert_null(cmd_find("finetuen"));
    assert_non_null(cmd_find("encode"));
    assert_non_null(cmd_find("export"));
    assert_non_null(cmd_find("import"));
}

static void test_option_tables_fit_and_names_are_unique(void **state)
{
    (void)state;
    for (int i = 0; i2p_commands[i]; i++) {
        const i2p_command *c = i2p_commands[i];
        if (!c->options) continue;
        void *st = calloc(1, c->state_size);
        cli_opt opts[CMD_MAX_OPTS];
        int n = c->options(st, opts);
        assert_in_range(n, 1, CMD_MAX_OPTS);
        for (int a = 0; a < n; a++) {
            assert_non_null(opts[a].ptr);
            for (int b = 0; b < a; b++) assert_string_not_equal(opts[a].name, opts[b].name);
        }
        free(st);
    }
}

static void test_ini_sections_follow_the_command_list(void **state)
{
    (void)state;
    for (int i = 0; i2p_commands[i]; i++) assert_true(cmd_ini_section(i2p_commands[i]->name));
    assert_true(cmd_ini_section("bench"));
    assert_true(cmd_ini_section("scaling"));
    assert_true(cmd_ini_section("fewshot"));   /* slurm/fewshot.sbatch */
    assert_true(cmd_ini_section("seeds"));     /* slurm/seeds.sbatch */
    assert_true(cmd_ini_section("finetune"));
    assert_false(cmd_ini_section("finetuen"));
    assert_false(cmd_ini_section("synht"));
}

static void test_opts_add_refuses_overflow(void **state)
{
    (void)state;
    cli_opt opts[CMD_MAX_OPTS], one[1] = {{"x", OPT_FLAG, NULL, NULL, "x"}};
    assert_int_equal(cmd_opts_add(opts, 0, one, 1), 1);
    assert_int_equal(cmd_opts_add(opts, CMD_MAX_OPTS - 1, one, 1), CMD_MAX_OPTS);
    assert_int_equal(cmd_opts_add(opts, CMD_MAX_OPTS, one, 1), -1);
    assert_int_equal(cmd_opts_add(opts, -1, one, 1), -1);
    model_opts mo = {0};
    assert_int_equal(model_opts_append(&mo, opts, 2), 2 + MODEL_OPTS_COUNT);
    assert_string_equal(opts[2].name, "points");
    assert_int_equal(model_opts_append(&mo, opts, CMD_MAX_OPTS - MODEL_OPTS_COUNT + 1), -1);
    assert_int_equal(model_opts_append(&mo, opts, -1), -1);
}

static void test_model_options_by_name(void **state)
{
    (void)state;
    model_opts mo = {0};
    assert_int_equal(model_opts_set(&mo, "mask-ratio", "0.5"), 0);
    assert_int_equal(model_opts_set(&mo, "points", "256"), 0);
    assert_string_equal(model_opts_get(&mo, "mask-ratio"), "0.5");
    assert_string_equal(model_opts_get(&mo, "drop-path"), "");
    assert_null(model_opts_get(&mo, "no-such-option"));
    assert_int_equal(model_opts_set(&mo, "no-such-option", "1"), -1);
    assert_int_equal(model_opts_clear(&mo, "mask-ratio"), 0);
    assert_string_equal(model_opts_get(&mo, "mask-ratio"), "");
    /* the option table points at the same storage the accessors use */
    cli_opt opts[CMD_MAX_OPTS];
    int n = model_opts_append(&mo, opts, 0);
    for (int i = 0; i < n; i++)
        if (!strcmp(opts[i].name, "points")) assert_ptr_equal(opts[i].ptr, model_opts_get(&mo, "points"));
    model3d_config c;
    char err[I2P_ERR_LEN];
    model3d_config_default(&c);
    assert_int_equal(model_opts_apply(&mo, &c, err), 0);
    assert_int_equal(c.points, 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_is_complete),
        cmocka_unit_test(test_option_tables_fit_and_names_are_unique),
        cmocka_unit_test(test_ini_sections_follow_the_command_list),
        cmocka_unit_test(test_opts_add_refuses_overflow),
        cmocka_unit_test(test_model_options_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
