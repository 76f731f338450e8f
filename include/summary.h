/* summary.h -- the one machine-readable JSON line every subcommand ends with.
 *
 * summary_begin makes an object {"i2pmae": VERSION, "command": name, "ranks": N, "threads": T};
 * the command adds its figures (cmd_main adds the peak memory, summary_add_peak_memory); summary_emit prints it on one line on rank 0 to stdout and frees it.
 */
#ifndef I2P_SUMMARY_H
#define I2P_SUMMARY_H

#include <cjson/cJSON.h>
#include <mpi.h>

cJSON *summary_begin(const char *command, int ranks);
void summary_emit(cJSON *obj, int rank);
/* Adds "peak_rss_bytes" (the largest VmHWM over comm's ranks, mem_peak.h) and
 * "peak_rss_bytes_per_rank" (each rank's, in rank order). Collective over comm. */
void summary_add_peak_memory(cJSON *obj, MPI_Comm comm);
/* Adds "per_rank": one object per rank of comm {"rank", "compute_s", "comm_s", "idle_s", "io_s"}
 * from each rank's mine[4] (in that order), and "comm_share", "io_share", "idle_share": those kinds'
 * sums over the ranks' summed wall time (wall_s per rank). The names of extract's JSON line.
 * Collective over comm. */
void summary_add_rank_times(cJSON *obj, const double mine[4], double wall_s, MPI_Comm comm);

#endif
