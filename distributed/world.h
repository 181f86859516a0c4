// World: this process's place in the job — rank, size, local rank and size, node, job — read
// from the launcher's environment: Open MPI's mpirun (OMPI_COMM_WORLD_*), PMIx (PMIX_RANK),
// Slurm's srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, ...), or a world of one with no
// launcher. The same binary behaves the same under each.
#pragma once

#include <string>

namespace convoy {

struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
  std::string launcher = "none";  // "mpirun", "srun", "pmix" or "none"
  std::string host;
  std::string job_id;  // Slurm's job id, when there is one

  static World FromEnvironment();
  bool distributed() const { return size > 1; }
};

}  // namespace convoy
