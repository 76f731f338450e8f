/* fuzz_h5_common.h -- shared by the HDF5 harnesses (fuzz_h5_*.c): MPI initialised once (our
 * readers open files through the MPI-IO driver on a communicator), the fuzzer's bytes written as
 * the whole .h5 file. Seeds are small valid files (tests/fuzz/corpus/h5_*), so libFuzzer's
 * mutations are byte flips, insertions and splices of real HDF5 structure: superblock, object
 * headers, attribute values, dataspaces, datatypes, filters. */
#ifndef I2P_FUZZ_H5_COMMON_H
#define I2P_FUZZ_H5_COMMON_H

#include <mpi.h>

#include "fuzz_util.h"
#include "h5io.h"

static void fuzz_mpi_finalize(void)
{
    MPI_Finalize();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    atexit(fuzz_mpi_finalize);
    h5io_init();
    return 0;
}

/* Elements a harness reads at most (larger files are only opened and validated). */
#define FUZZ_H5_MAX_ELEMS (1L << 20)

#endif
