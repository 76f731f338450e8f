# tests/mpi_env.sh -- the Open MPI settings of every test (sourced by tests/run_all.sh and
# tests/lib.sh): single-node runs as root, oversubscribed; a value already set in the environment
# is kept for the last two.
#   - OMPI_ALLOW_RUN_AS_ROOT*: mpirun as root runs nothing and exits 0 without them (platform.md).
#   - pml ob1 (shared memory, vader): with Open MPI 4.1's default, UCX, every MPI_Init spends ~0.2 s
#     polling in nanosleep while UCX probes its transports (785 sleeps of 125 us, strace), ~40 % of a
#     short test command's wall time. Production jobs keep Open MPI's default (docs/development.md).
#   - singletons isolated: a program started without mpirun would fork an orted daemon for its
#     MPI_Init (another ~0.2 s); nothing here spawns processes, so it runs without one.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
export OMPI_MCA_ess_singleton_isolated="${OMPI_MCA_ess_singleton_isolated:-1}"
