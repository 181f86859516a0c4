#include "io/shard_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

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
StatusOr<ShardReader::Chunks> Locate(hid_t file, const std::string& path, double file_bytes, const Expected& e,
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
  ShardReader::Chunks out;
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

Status ReadAt(int fd, const std::string& what, uint64_t address, uint64_t bytes, uint8_t* out) {
  for (uint64_t done = 0; done < bytes;) {
    const ssize_t n = ::pread(fd, out + done, bytes - done, static_cast<off_t>(address + done));
    if (n <= 0) return DataError(what + ": reading failed (" + (n == 0 ? "unexpected end of file" : "I/O error") + ")");
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<ShardReader> ShardReader::Open(const std::string& path) {
  SilenceHdf5();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return DataError(path + ": shard file is missing (was the conversion interrupted, or the folder moved?)");
  if (!std::filesystem::is_regular_file(path, ec))  // a FIFO or device would block or never end
    return DataError(path + ": is not a regular file; a shard must be one");
  const double file_bytes = static_cast<double>(std::filesystem::file_size(path, ec));
  if (ec || H5Fis_hdf5(path.c_str()) <= 0)
    return DataError(path + ": not a readable HDF5 file (truncated or corrupt?); re-run convoy convert");
  ShardReader reader;
  reader.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return DataError(path + ": cannot be opened for reading");
  reader.fd_ = std::shared_ptr<const int>(new int(fd), [](const int* p) {
    ::close(*p);
    delete p;
  });
  Hdf5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) return DataError(path + ": cannot be opened as HDF5 (truncated or corrupt?); re-run convoy convert");
  std::vector<hsize_t> idims, ldims;
  ASSIGN_OR_RETURN(reader.images_, Locate(file.get(), path, file_bytes, {"images", H5T_INTEGER, 1, false, 4}, &idims));
  ASSIGN_OR_RETURN(Chunks labels, Locate(file.get(), path, file_bytes, {"labels", H5T_INTEGER, 4, true, 1}, &ldims));
  if (idims[0] != ldims[0])
    return DataError(path + ": has " + std::to_string(idims[0]) + " images but " + std::to_string(ldims[0]) +
                     " labels");
  if (idims[1] > INT32_MAX || idims[2] > INT32_MAX || idims[3] > INT32_MAX)
    return DataError(path + ": image sides past 2^31 (crafted)");
  reader.c_ = static_cast<int>(idims[1]);
  reader.h_ = static_cast<int>(idims[2]);
  reader.w_ = static_cast<int>(idims[3]);
  reader.image_bytes_ = reader.images_.row_bytes;
  // Labels are 4 bytes a sample, read whole now: the order of an epoch needs none of them, but
  // checking their range at start-up names a bad label before training begins.
  reader.labels_.resize(ldims[0]);
  auto* dst = reinterpret_cast<uint8_t*>(reader.labels_.data());
  std::vector<uint8_t> chunk;
  for (size_t k = 0; k < labels.chunks.size(); ++k) {
    const auto [address, bytes] = labels.chunks[k];
    chunk.resize(bytes);
    RETURN_IF_ERROR(ReadAt(fd, path + ": labels chunk " + std::to_string(k), address, bytes, chunk.data()));
    const int64_t first = static_cast<int64_t>(k) * labels.rows_per_chunk;
    const int64_t rows = std::min<int64_t>(labels.rows_per_chunk, static_cast<int64_t>(ldims[0]) - first);
    std::copy_n(chunk.data(), rows * 4, dst + first * 4);  // x86-64 and ARM are little-endian
  }
  return reader;
}

Status ShardReader::ReadChunk(int64_t k, std::vector<uint8_t>* out) const {
  const auto [address, bytes] = images_.chunks.at(static_cast<size_t>(k));
  out->resize(bytes);  // a whole chunk: the last one's tail rows are padding, dropped below
  RETURN_IF_ERROR(ReadAt(*fd_, path_ + ": images chunk " + std::to_string(k), address, bytes, out->data()));
  out->resize(static_cast<size_t>(chunk_count(k) * image_bytes_));
  return Status::Ok();
}

}  // namespace convoy
