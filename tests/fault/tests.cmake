# The LD_PRELOAD disk-fault injector (fault_inject.c): tests that make the disk full or
# failing under a Store or under kaizend load it into a child process.
enable_language(C)
add_library(kaizen_fault_inject MODULE ${CMAKE_CURRENT_LIST_DIR}/fault_inject.c)
target_link_libraries(kaizen_fault_inject PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(kaizen_fault_inject PROPERTIES
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests PREFIX "lib")
foreach(t test_storage test_e2e)
  if(TARGET ${t})
    add_dependencies(${t} kaizen_fault_inject)
  endif()
endforeach()
