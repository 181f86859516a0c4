#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace convoy {

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

StatusOr<OwnTempFile> CreateOwnTempFile(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  const std::string stem = path + ".tmp." + std::to_string(::getpid()) + ".";
  for (int attempt = 0; attempt < 100; ++attempt) {
    OwnTempFile tmp{stem + std::to_string(counter++), -1};
    tmp.fd = ::open(tmp.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (tmp.fd >= 0) return tmp;
    if (errno != EEXIST) return Internal(tmp.name + ": cannot create (" + std::strerror(errno) + ")");
  }
  return Internal(stem + "*: 100 temporary names in a row exist already; remove the stale ones");
}

Status AtomicFile::Open(const std::string& path) {
  path_ = path;
  ASSIGN_OR_RETURN(OwnTempFile tmp, CreateOwnTempFile(path));
  tmp_ = std::move(tmp.name);
  fd_ = tmp.fd;
  return Status::Ok();
}

Status AtomicFile::Write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal(tmp_ + ": write failed (" + std::strerror(errno) + ")");
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status AtomicFile::Commit() {
  if (::fsync(fd_) != 0) return Internal(tmp_ + ": fsync failed (" + std::strerror(errno) + ")");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 || ::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp_.c_str());
    return Internal(path_ + ": could not replace the file (" + why + ")");
  }
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  AtomicFile file;
  RETURN_IF_ERROR(file.Open(path));
  RETURN_IF_ERROR(file.Write(bytes.data(), bytes.size()));
  return file.Commit();
}

}  // namespace convoy
