#include "io/shard_probe.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "io/hdf5_handle.h"

namespace convoy {
namespace {

struct Expected {
  const char* name;
  H5T_class_t cls;
  size_t size;
  bool is_signed;
  int rank;
};

// Opens one dataset and checks, before anything is sized from it: it is a hard link in this
// file with no external or virtual storage (a shard never reads another file), its element type
// and rank, that the file can hold what it declares, and where each of its chunks lies: every
// row-block present once, unfiltered, whole, inside the file.
StatusOr<ChunkPlaces> Locate(hid_t file, const std::string& path, double file_bytes, const Expected& e,
                             std::vector<hsize_t>* dims_out) {
  const std::string what = path + ": dataset '" + e.name + "'";
  if (H5Lexists(file, e.name, H5P_DEFAULT) <= 0) return DataError(path + ": has no dataset '" + e.name + "'");
  H5L_info_t link{};
  if (H5Lget_info(file, e.name, &link, H5P_DEFAULT) < 0 || link.type != H5L_TYPE_HARD)
    return DataError(what + " is a link to somewhere else; a shard holds its own data");
  Hdf5Handle set(H5Dopen2(file, e.name, H5P_DEFAULT), H5Dclose);
  if (!set.ok()) return DataError(what + " cannot be opened (corrupt file?)");
  Hdf5Handle create(H5Dget_create_plist(set.get()), H5Pclose);
  const H5D_layout_t layout = create.ok() ? H5Pget_layout(create.get()) : H5D_LAYOUT_ERROR;
  if (!create.ok() || H5Pget_external_count(create.get()) != 0 ||
      (layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED && layout != H5D_COMPACT))
    return DataError(what + " keeps its data outside the file (external or virtual storage)");
  Hdf5Handle type(H5Dget_type(set.get()), H5Tclose);
  Hdf5Handle space(H5Dget_space(set.get()), H5Sclose);
  if (!type.ok() || !space.ok()) return DataError(what + " cannot be opened (corrupt file?)");
  const std::string expected = std::string(e.is_signed ? "int" : "uint") + std::to_string(e.size * 8);
  if (H5Tget_class(type.get()) != e.cls || H5Tget_size(type.get()) != e.size ||
      (H5Tget_sign(type.get()) == H5T_SGN_2) != e.is_signed || (e.size > 1 && H5Tget_order(type.get()) != H5T_ORDER_LE))
    return DataError(what + " has the wrong element type; expected little-endian " + expected);
  if (H5Sget_simple_extent_ndims(space.get()) != e.rank)
    return DataError(what + " has rank " + std::to_string(H5Sget_simple_extent_ndims(space.get())) + ", expected " +
                     std::to_string(e.rank));
  std::vector<hsize_t> dims(e.rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  // Declared bytes against the file's real size, in double: the product of claims may pass any
  // integer type's range.
  double declared = static_cast<double>(e.size);
  for (hsize_t d : dims) declared *= static_cast<double>(d);
  if (declared > file_bytes) {
    char sizes[96];
    std::snprintf(sizes, sizeof sizes, "%.17g bytes but the file has %.17g", declared, file_bytes);
    return DataError(what + " declares " + sizes + " (truncated or crafted); re-run convoy convert");
  }
  // A row's bytes: bounded by the file when there are rows, and by 2^40 when there are none
  // (an empty dataset declares nothing, whatever its row shape says).
  double row = static_cast<double>(e.size);
  for (int i = 1; i < e.rank; ++i) row *= static_cast<double>(dims[i]);
  if (row > static_cast<double>(int64_t{1} << 40))
    return DataError(what + " declares rows of " + std::to_string(row) + " bytes (crafted)");
  *dims_out = dims;
  ChunkPlaces out;
  out.row_bytes = static_cast<int64_t>(row);
  if (dims[0] == 0) return out;

  // What convoy writes: chunks of whole rows, no filters (compression would need HDF5's own
  // reads, which trust the file).
  std::vector<hsize_t> chunk(e.rank);
  if (layout != H5D_CHUNKED || H5Pget_nfilters(create.get()) != 0 ||
      H5Pget_chunk(create.get(), e.rank, chunk.data()) != e.rank || chunk[0] == 0)
    return DataError(what + " is not stored as convoy writes shards (chunks of whole rows, uncompressed); " +
                     "re-run convoy convert");
  for (int i = 1; i < e.rank; ++i)
    if (chunk[i] != dims[i])
      return DataError(what + " is chunked across rows' insides; convoy writes chunks of whole rows");
  if (static_cast<double>(chunk[0]) * out.row_bytes > file_bytes)
    return DataError(what + " declares chunks larger than the file (truncated or crafted)");
  const int64_t chunk_bytes = static_cast<int64_t>(chunk[0]) * out.row_bytes;
  const hsize_t want = (dims[0] + chunk[0] - 1) / chunk[0];
  hsize_t have = 0;
  if (H5Dget_num_chunks(set.get(), space.get(), &have) < 0 || have != want)
    return DataError(what + " has " + std::to_string(have) + " of its " + std::to_string(want) +
                     " chunks stored (truncated or crafted); re-run convoy convert");
  out.rows_per_chunk = static_cast<int64_t>(chunk[0]);
  out.chunks.assign(want, {0, 0});
  for (hsize_t i = 0; i < have; ++i) {
    std::vector<hsize_t> offset(e.rank);
    unsigned filters = 0;
    haddr_t address = HADDR_UNDEF;
    hsize_t bytes = 0;
    if (H5Dget_chunk_info(set.get(), space.get(), i, offset.data(), &filters, &address, &bytes) < 0)
      return DataError(what + ": chunk " + std::to_string(i) + " cannot be located (corrupt file?)");
    bool whole_rows = offset[0] % chunk[0] == 0 && offset[0] < dims[0];
    for (int d = 1; d < e.rank; ++d) whole_rows = whole_rows && offset[d] == 0;
    const hsize_t k = whole_rows ? offset[0] / chunk[0] : 0;
    if (!whole_rows || out.chunks[k].second != 0 || filters != 0 || address == HADDR_UNDEF ||
        bytes != static_cast<hsize_t>(chunk_bytes) || static_cast<double>(address) + bytes > file_bytes)
      return DataError(what + ": chunk " + std::to_string(i) + " at row " + std::to_string(offset[0]) + " (" +
                       std::to_string(bytes) + " bytes) does not fit the dataset or the file (corrupt or crafted)");
    out.chunks[k] = {address, bytes};
  }
  return out;
}

StatusOr<ShardLayout> ProbeHere(const std::string& path, double file_bytes) {
  SilenceHdf5();
  if (H5Fis_hdf5(path.c_str()) <= 0)
    return DataError(path + ": not a readable HDF5 file (truncated or corrupt?); re-run convoy convert");
  Hdf5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) return DataError(path + ": cannot be opened as HDF5 (truncated or corrupt?); re-run convoy convert");
  ShardLayout layout;
  std::vector<hsize_t> idims, ldims, odims;
  layout.encoded = H5Lexists(file.get(), "images", H5P_DEFAULT) <= 0 && H5Lexists(file.get(), "jpeg", H5P_DEFAULT) > 0;
  if (layout.encoded) {
    ASSIGN_OR_RETURN(layout.images, Locate(file.get(), path, file_bytes, {"jpeg", H5T_INTEGER, 1, false, 1}, &idims));
    ASSIGN_OR_RETURN(layout.offsets,
                     Locate(file.get(), path, file_bytes, {"jpeg_offsets", H5T_INTEGER, 8, true, 1}, &odims));
  } else {
    ASSIGN_OR_RETURN(layout.images, Locate(file.get(), path, file_bytes, {"images", H5T_INTEGER, 1, false, 4}, &idims));
  }
  ASSIGN_OR_RETURN(layout.labels, Locate(file.get(), path, file_bytes, {"labels", H5T_INTEGER, 4, true, 1}, &ldims));
  layout.image_dims.assign(idims.begin(), idims.end());
  layout.label_dims.assign(ldims.begin(), ldims.end());
  layout.offset_dims.assign(odims.begin(), odims.end());
  return layout;
}

// The child's answer on the pipe: a status code and message, then the layout's numbers.
class Wire {
 public:
  void Put(uint64_t v) { bytes_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void Put(const std::string& s) {
    Put(s.size());
    bytes_ += s;
  }
  void Put(const std::vector<uint64_t>& v) {
    Put(v.size());
    for (uint64_t x : v) Put(x);
  }
  void Put(const ChunkPlaces& c) {
    Put(static_cast<uint64_t>(c.rows_per_chunk));
    Put(static_cast<uint64_t>(c.row_bytes));
    Put(c.chunks.size());
    for (const auto& [address, size] : c.chunks) Put(address), Put(size);
  }
  const std::string& bytes() const { return bytes_; }

  explicit Wire(std::string bytes = {}) : bytes_(std::move(bytes)) {}
  bool Get(uint64_t* v) {
    if (bytes_.size() - at_ < sizeof *v) return false;
    std::memcpy(v, bytes_.data() + at_, sizeof *v);
    at_ += sizeof *v;
    return true;
  }
  bool Get(std::string* s) {
    uint64_t n = 0;
    if (!Get(&n) || bytes_.size() - at_ < n) return false;
    s->assign(bytes_, at_, n);
    at_ += n;
    return true;
  }
  bool Get(std::vector<uint64_t>* v) {
    uint64_t n = 0;
    if (!Get(&n) || (bytes_.size() - at_) / sizeof(uint64_t) < n) return false;
    v->resize(n);
    for (uint64_t& x : *v) Get(&x);
    return true;
  }
  bool Get(ChunkPlaces* c) {
    uint64_t rows = 0, row_bytes = 0, n = 0;
    if (!Get(&rows) || !Get(&row_bytes) || !Get(&n) || (bytes_.size() - at_) / (2 * sizeof(uint64_t)) < n) return false;
    c->rows_per_chunk = static_cast<int64_t>(rows);
    c->row_bytes = static_cast<int64_t>(row_bytes);
    c->chunks.resize(n);
    for (auto& [address, size] : c->chunks) Get(&address), Get(&size);
    return true;
  }

 private:
  std::string bytes_;
  size_t at_ = 0;
};

}  // namespace

StatusOr<ShardLayout> ProbeShardLayout(const std::string& path, double file_bytes) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Internal(path + ": cannot make a pipe to read the shard's layout");
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]), ::close(fds[1]);
    return Internal(path + ": cannot fork to read the shard's layout");
  }
  if (child == 0) {  // parse, answer, and leave without running the parent's exit handlers
    ::close(fds[0]);
    // A fault in libhdf5 kills this child outright: the parent's handlers (a sanitizer's, a
    // fuzzer's) must not report it as the parent's own crash.
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, SIG_DFL);
    const StatusOr<ShardLayout> found = ProbeHere(path, file_bytes);
    Wire wire;
    wire.Put(static_cast<uint64_t>(found.status().code()));
    wire.Put(found.status().message());
    if (found.ok()) {
      wire.Put(uint64_t{found->encoded});
      wire.Put(found->image_dims), wire.Put(found->label_dims), wire.Put(found->offset_dims);
      wire.Put(found->images), wire.Put(found->labels), wire.Put(found->offsets);
    }
    for (size_t done = 0; done < wire.bytes().size();) {
      const ssize_t n = ::write(fds[1], wire.bytes().data() + done, wire.bytes().size() - done);
      if (n <= 0) ::_exit(3);
      done += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string answer;
  char buffer[65536];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  Wire wire(std::move(answer));
  uint64_t code = 0;
  std::string message;
  ShardLayout layout;
  if (WIFSIGNALED(status) || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !wire.Get(&code) ||
      !wire.Get(&message)) {
    const std::string how = WIFSIGNALED(status) ? "crashed (signal " + std::to_string(WTERMSIG(status)) + ", " +
                                                      strsignal(WTERMSIG(status)) + ")"
                                                : "failed (exit " + std::to_string(WEXITSTATUS(status)) + ")";
    return DataError(path + ": libhdf5 " + how +
                     " reading the shard's metadata: the file is corrupt or crafted; re-run convoy convert");
  }
  if (code != 0) return Status(static_cast<StatusCode>(code), message);
  uint64_t encoded = 0;
  if (!wire.Get(&encoded) || !wire.Get(&layout.image_dims) || !wire.Get(&layout.label_dims) ||
      !wire.Get(&layout.offset_dims) || !wire.Get(&layout.images) || !wire.Get(&layout.labels) ||
      !wire.Get(&layout.offsets) || layout.image_dims.size() != (encoded ? 1u : 4u) || layout.label_dims.size() != 1 ||
      layout.offset_dims.size() != (encoded ? 1u : 0u))
    return Internal(path + ": the shard's layout came back incomplete");
  layout.encoded = encoded != 0;
  return layout;
}

}  // namespace convoy
