# Read by ctest after the discovered cluster tests (TEST_INCLUDE_FILES): every one is labelled
# `cluster`, the Slurm ones `slurm` too and the network-namespace ones `netns`.
foreach(test IN LISTS convoy_cluster_tests_TESTS)
  if(test MATCHES "^SlurmTest\\.")
    set_tests_properties("${test}" PROPERTIES LABELS "cluster;slurm")
  elseif(test MATCHES "^TwoHostsTest\\.")
    set_tests_properties("${test}" PROPERTIES LABELS "cluster;netns")
  else()
    set_tests_properties("${test}" PROPERTIES LABELS "cluster")
  endif()
endforeach()
