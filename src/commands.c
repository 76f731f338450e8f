/* commands.c -- the list of commands: main's dispatch table, `i2pmae --help` and the INI
 * sections a command skips all come from i2p_commands (see commands.h). */
#include "commands.h"

#include <string.h>

extern const i2p_command cmd_synth, cmd_convert, cmd_info, cmd_vit, cmd_extract, cmd_render,
    cmd_pretrain, cmd_svm, cmd_finetune, cmd_fewshot_split, cmd_encode, cmd_export, cmd_import,
    cmd_partseg;

const i2p_command *const i2p_commands[] = {
    &cmd_synth, &cmd_convert, &cmd_info, &cmd_vit, &cmd_extract, &cmd_render, &cmd_pretrain,
    &cmd_svm, &cmd_finetune, &cmd_fewshot_split, &cmd_encode, &cmd_export, &cmd_import,
    &cmd_partseg, NULL,
};

/* INI sections read by scripts, not by a command (tests/bench: [bench], [scaling]; the job arrays
 * slurm/fewshot.sbatch and slurm/seeds.sbatch: [fewshot], [seeds]). */
static const char *const tool_sections[] = {"bench", "scaling", "fewshot", "seeds", NULL};

const i2p_command *cmd_find(const char *name)
{
    for (int i = 0; i2p_commands[i]; i++)
        if (!strcmp(i2p_commands[i]->name, name)) return i2p_commands[i];
    return NULL;
}

int cmd_ini_section(const char *name)
{
    for (int i = 0; tool_sections[i]; i++)
        if (!strcmp(tool_sections[i], name)) return 1;
    return cmd_find(name) != NULL;
}
