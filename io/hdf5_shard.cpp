#include "io/hdf5_shard.h"

#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"

namespace convoy {
namespace {

// HDF5 prints its error stack to stderr by default; convoy reports errors itself.
void SilenceHdf5() {
  static const bool silenced = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)silenced;
}

// Closes an HDF5 handle with the right function when it goes out of scope.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

Status WriteDataset(hid_t file, const char* name, hid_t type, const std::vector<hsize_t>& dims,
                    const std::vector<hsize_t>& chunk, const void* data) {
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Handle props(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (dims[0] > 0) H5Pset_chunk(props.get(), static_cast<int>(chunk.size()), chunk.data());
  Handle set(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, props.get(), H5P_DEFAULT), H5Dclose);
  if (!set.ok() || (dims[0] > 0 && H5Dwrite(set.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
    return Internal(std::string("cannot write dataset '") + name + "'");
  return Status::Ok();
}

// Opens a dataset and checks its element class, size and rank, that it lives in this file (no
// external or soft link, no external or virtual storage: a shard never reads another file), and
// that the file can hold what it declares before anyone allocates that much.
StatusOr<std::vector<hsize_t>> Describe(hid_t file, const std::string& path, const char* name, H5T_class_t cls,
                                        size_t size, bool is_signed, int rank) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) return DataError(path + ": has no dataset '" + name + "'");
  H5L_info_t link{};
  if (H5Lget_info(file, name, &link, H5P_DEFAULT) < 0 || link.type != H5L_TYPE_HARD)
    return DataError(path + ": dataset '" + name + "' is a link to somewhere else; a shard holds its own data");
  Handle set(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (!set.ok()) return DataError(path + ": dataset '" + name + "' cannot be opened (corrupt file?)");
  Handle create(H5Dget_create_plist(set.get()), H5Pclose);
  const H5D_layout_t layout = create.ok() ? H5Pget_layout(create.get()) : H5D_LAYOUT_ERROR;
  if (!create.ok() || H5Pget_external_count(create.get()) != 0 ||
      (layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED && layout != H5D_COMPACT))
    return DataError(path + ": dataset '" + name + "' keeps its data outside the file (external or virtual storage)");
  Handle type(H5Dget_type(set.get()), H5Tclose);
  Handle space(H5Dget_space(set.get()), H5Sclose);
  if (!set.ok() || !type.ok() || !space.ok())
    return DataError(path + ": dataset '" + name + "' cannot be opened (corrupt file?)");
  const std::string expected = std::string(is_signed ? "int" : "uint") + std::to_string(size * 8);
  if (H5Tget_class(type.get()) != cls || H5Tget_size(type.get()) != size ||
      (H5Tget_sign(type.get()) == H5T_SGN_2) != is_signed)
    return DataError(path + ": dataset '" + name + "' has the wrong element type; expected " + expected);
  if (H5Sget_simple_extent_ndims(space.get()) != rank)
    return DataError(path + ": dataset '" + name + "' has rank " +
                     std::to_string(H5Sget_simple_extent_ndims(space.get())) + ", expected " + std::to_string(rank));
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  // Declared bytes against the file's real size: uncompressed data cannot be larger than the
  // file; deflate packs at most ~1032:1.
  std::error_code ec;
  const double file_bytes = static_cast<double>(std::filesystem::file_size(path, ec));
  double declared = static_cast<double>(size);
  for (hsize_t d : dims) declared *= static_cast<double>(d);
  const double ratio = H5Pget_nfilters(create.get()) > 0 ? 1100.0 : 1.0;
  if (ec || declared > file_bytes * ratio)
    return DataError(path + ": dataset '" + name + "' declares " + std::to_string(static_cast<int64_t>(declared)) +
                     " bytes but the file has " + std::to_string(static_cast<int64_t>(file_bytes)) +
                     " (truncated or crafted); re-run convoy convert");
  return dims;
}

Status ReadAll(hid_t file, const std::string& path, const char* name, hid_t mem_type, void* out) {
  Handle set(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (!set.ok() || H5Dread(set.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
    return DataError(path + ": reading dataset '" + name + "' failed (truncated or corrupt file)");
  return Status::Ok();
}

}  // namespace

Status WriteShard(const std::string& path, const ShardData& shard) {
  SilenceHdf5();
  // Our own fresh file to write into (HDF5 would follow a planted symlink).
  ASSIGN_OR_RETURN(OwnTempFile own, CreateOwnTempFile(path));
  ::close(own.fd);
  const std::string tmp = own.name;
  {
    Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) {
      std::filesystem::remove(tmp);
      return Internal(tmp + ": cannot create HDF5 file");
    }
    const hsize_t n = static_cast<hsize_t>(shard.count);
    const hsize_t block = std::min<hsize_t>(std::max<hsize_t>(n, 1), 256);
    const hsize_t c = shard.c, h = shard.h, w = shard.w;
    RETURN_IF_ERROR(
        WriteDataset(file.get(), "images", H5T_NATIVE_UINT8, {n, c, h, w}, {block, c, h, w}, shard.images.data())
            .Prefixed(tmp));
    RETURN_IF_ERROR(WriteDataset(file.get(), "labels", H5T_NATIVE_INT32, {n},
                                 {std::min<hsize_t>(std::max<hsize_t>(n, 1), 4096)}, shard.labels.data())
                        .Prefixed(tmp));
    if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) return Internal(tmp + ": flush failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Internal(path + ": rename failed: " + ec.message());
  return Status::Ok();
}

StatusOr<ShardData> ReadShard(const std::string& path) {
  SilenceHdf5();
  if (!std::filesystem::exists(path))
    return DataError(path +
                     ": shard file is missing (was the conversion interrupted, or the "
                     "folder moved?)");
  if (!std::filesystem::is_regular_file(path))  // a FIFO or device would block or never end
    return DataError(path + ": is not a regular file; a shard must be one");
  if (H5Fis_hdf5(path.c_str()) <= 0)
    return DataError(path +
                     ": not a readable HDF5 file (truncated or corrupt?); re-run convoy "
                     "convert");
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok())
    return DataError(path +
                     ": cannot be opened as HDF5 (truncated or corrupt?); re-run convoy "
                     "convert");
  ASSIGN_OR_RETURN(auto idims, Describe(file.get(), path, "images", H5T_INTEGER, 1, false, 4));
  ASSIGN_OR_RETURN(auto ldims, Describe(file.get(), path, "labels", H5T_INTEGER, 4, true, 1));
  if (idims[0] != ldims[0])
    return DataError(path + ": has " + std::to_string(idims[0]) + " images but " + std::to_string(ldims[0]) +
                     " labels");
  ShardData shard;
  shard.count = static_cast<int64_t>(idims[0]);
  shard.c = static_cast<int>(idims[1]);
  shard.h = static_cast<int>(idims[2]);
  shard.w = static_cast<int>(idims[3]);
  shard.images.resize(idims[0] * idims[1] * idims[2] * idims[3]);
  shard.labels.resize(ldims[0]);
  if (shard.count > 0) {
    RETURN_IF_ERROR(ReadAll(file.get(), path, "images", H5T_NATIVE_UINT8, shard.images.data()));
    RETURN_IF_ERROR(ReadAll(file.get(), path, "labels", H5T_NATIVE_INT32, shard.labels.data()));
  }
  return shard;
}

}  // namespace convoy
