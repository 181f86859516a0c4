# Asserts that each ctest label the README names selects the tests it says, on this build:
#   cmake -DCTEST=ctest -DBUILD_DIR=build -P check_labels.cmake
# A label that selects nothing, or a test of the wrong kind, fails with the list ctest gave.
function(tests_with_label label out)
  execute_process(COMMAND ${CTEST} -N -L "^${label}$" WORKING_DIRECTORY ${BUILD_DIR}
                  OUTPUT_VARIABLE listing RESULT_VARIABLE code)
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "ctest -N -L ${label} exited ${code}:\n${listing}")
  endif()
  string(REGEX MATCHALL "Test +#[0-9]+: [^\n]+" lines "${listing}")
  set(names "")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "Test +#[0-9]+: " "" name "${line}")
    list(APPEND names "${name}")
  endforeach()
  set(${out} "${names}" PARENT_SCOPE)
endfunction()

# label, the pattern every test it selects must match, and how many there are at least.
foreach(row "mpi ^MpiCommunicatorConformance\\. 3" "slurm ^SlurmTest\\. 2"
            "netns ^TwoHostsTest\\. 2" "cluster ^(SlurmTest|TwoHostsTest|ChaosTest)\\. 5"
            "fuzz ^FuzzReplay\\. 4")
  separate_arguments(row UNIX_COMMAND "${row}")
  list(GET row 0 label)
  list(GET row 1 pattern)
  list(GET row 2 at_least)
  tests_with_label(${label} names)
  list(LENGTH names count)
  if(count LESS at_least)
    message(FATAL_ERROR "label '${label}': expected at least ${at_least} tests, found ${count}: ${names}")
  endif()
  foreach(name IN LISTS names)
    if(NOT name MATCHES "${pattern}")
      message(FATAL_ERROR "label '${label}' selects '${name}', which does not match ${pattern}")
    endif()
  endforeach()
  message(STATUS "label '${label}': ${count} tests")
endforeach()
