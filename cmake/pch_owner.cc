// Owner of a shared precompiled header (cmake/Precompile.cmake); no code.
