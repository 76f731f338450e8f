/* main.c -- i2pmae entry point: MPI and logger set-up, subcommand dispatch. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "h5io.h"
#include "log.h"
#include "version.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_entry;

static const command_entry commands[] = {
    {"synth", cmd_synth, "write a synthetic labelled point-cloud dataset"},
    {"convert", cmd_convert, "convert ModelNet40 / ScanObjectNN / ShapeNet-55 / OFF into the canonical file"},
    {"info", cmd_info, "summarise any file this program wrote"},
    {"vit", cmd_vit, "run the 2D ViT on images (check weights; patch features, CLS, saliency)"},
    {"extract", cmd_extract, "precompute multi-view 2D features of a dataset (parallel HDF5)"},
    {"render", cmd_render, "draw a sample's depth maps (and saliency) as a PNG"},
    {"pretrain", cmd_pretrain, "I2P-MAE pre-training of the 3D network"},
    {"svm", cmd_svm, "linear-SVM evaluation of a frozen encoder"},
    {"finetune", cmd_finetune, "fine-tune a classifier on a pre-trained encoder"},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void print_usage(void)
{
    printf("usage: i2pmae <command> [options]    (run under mpirun/srun, or as one process)\n\n"
           "I2P-MAE: 3D point masked autoencoders guided by a frozen 2D ViT.\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++) printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    printf("\n'i2pmae <command> --help' shows each command's options. 'i2pmae --version' the version.\n");
}

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    log_init(rank, 0);
    h5io_init();

    int rc = 2;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (rank == 0) print_usage();
        rc = argc < 2 ? 2 : 0;
    } else if (!strcmp(argv[1], "--version")) {
        if (rank == 0) printf("i2pmae %s\n", I2PMAE_VERSION);
        rc = 0;
    } else {
        const command_entry *c = NULL;
        for (int i = 0; i < n_commands; i++)
            if (!strcmp(argv[1], commands[i].name)) c = &commands[i];
        if (!c) {
            if (rank == 0) log_error("unknown command '%s' (see: i2pmae --help)", argv[1]);
            rc = 2;
        } else {
            rc = c->run(argc - 1, argv + 1);
        }
    }
    MPI_Finalize();
    return rc;
}
