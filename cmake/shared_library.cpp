// libconvoy.so is made of the convoy archives, linked whole (cmake/install.cmake); a shared
// library target needs one source of its own, and this is it.
