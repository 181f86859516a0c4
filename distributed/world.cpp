#include "distributed/world.h"

#include <unistd.h>

#include <cstdlib>

namespace convoy {
namespace {

bool ReadInt(const char* name, int* out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return false;
  *out = std::atoi(v);
  return true;
}

}  // namespace

World World::FromEnvironment() {
  World w;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  w.host = host;
  if (const char* job = std::getenv("SLURM_JOB_ID")) w.job_id = job;
  if (ReadInt("OMPI_COMM_WORLD_RANK", &w.rank)) {
    w.launcher = "mpirun";
    ReadInt("OMPI_COMM_WORLD_SIZE", &w.size);
    ReadInt("OMPI_COMM_WORLD_LOCAL_RANK", &w.local_rank);
    ReadInt("OMPI_COMM_WORLD_LOCAL_SIZE", &w.local_size);
    // Under srun with PMIx, Open MPI also sets these; say which launcher started us.
    if (std::getenv("SLURM_STEP_ID")) w.launcher = "srun";
  } else if (ReadInt("SLURM_PROCID", &w.rank) && std::getenv("SLURM_STEP_ID")) {
    w.launcher = "srun";
    ReadInt("SLURM_NTASKS", &w.size);
    ReadInt("SLURM_LOCALID", &w.local_rank);
    // SLURM_TASKS_PER_NODE may read "2(x3)": its leading number is this layout's local size.
    ReadInt("SLURM_TASKS_PER_NODE", &w.local_size);
  } else if (ReadInt("PMIX_RANK", &w.rank)) {
    w.launcher = "pmix";
    if (!ReadInt("PMIX_SIZE", &w.size)) ReadInt("OMPI_UNIVERSE_SIZE", &w.size);
  }
  if (w.size < 1) w.size = 1;
  if (w.local_size < 1) w.local_size = 1;
  return w;
}

}  // namespace convoy
