// AtomicFile: writes a file so that readers see the old file or the whole new one, never a
// part of it, whatever instant the writer dies at: a temporary file in the same folder, written,
// flushed and fsync'ed, then renamed over the target, then the folder fsync'ed so the rename
// itself survives a crash. An AtomicFile destroyed before Commit() removes its temporary file.
#pragma once

#include <string>

#include "core/status.h"

namespace convoy {

class AtomicFile {
 public:
  ~AtomicFile();
  Status Open(const std::string& path);
  Status Write(const void* data, size_t size);
  Status Commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

Status WriteFileAtomically(const std::string& path, const std::string& bytes);

// A temporary file beside `path` that this call created and nobody else can have planted:
// "<path>.tmp.<pid>.<n>", opened with O_EXCL | O_NOFOLLOW, so an existing file or a symlink
// there is never written through. Returns its name and an open descriptor (close it).
struct OwnTempFile {
  std::string name;
  int fd = -1;
};
StatusOr<OwnTempFile> CreateOwnTempFile(const std::string& path);

}  // namespace convoy
