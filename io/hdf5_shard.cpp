#include "io/hdf5_shard.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "io/hdf5_handle.h"

namespace convoy {
namespace {

Status WriteDataset(hid_t file, const char* name, hid_t type, const std::vector<hsize_t>& dims,
                    const std::vector<hsize_t>& chunk, const void* data) {
  Hdf5Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Hdf5Handle props(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (dims[0] > 0) H5Pset_chunk(props.get(), static_cast<int>(chunk.size()), chunk.data());
  Hdf5Handle set(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, props.get(), H5P_DEFAULT), H5Dclose);
  if (!set.ok() || (dims[0] > 0 && H5Dwrite(set.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
    return Internal(std::string("cannot write dataset '") + name + "'");
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
    Hdf5Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) {
      std::filesystem::remove(tmp);
      return Internal(tmp + ": cannot create HDF5 file");
    }
    const hsize_t n = static_cast<hsize_t>(shard.count);
    if (shard.encoded()) {
      const hsize_t bytes = shard.jpeg.size();
      RETURN_IF_ERROR(WriteDataset(file.get(), "jpeg", H5T_NATIVE_UINT8, {bytes},
                                   {std::min<hsize_t>(std::max<hsize_t>(bytes, 1), kJpegChunkBytes)}, shard.jpeg.data())
                          .Prefixed(tmp));
      RETURN_IF_ERROR(WriteDataset(file.get(), "jpeg_offsets", H5T_NATIVE_INT64, {n + 1},
                                   {std::min<hsize_t>(n + 1, 4096)}, shard.jpeg_offsets.data())
                          .Prefixed(tmp));
    } else {
      const hsize_t block =
          std::min<hsize_t>(std::max<hsize_t>(n, 1), ShardChunkRows(int64_t{shard.c} * shard.h * shard.w));
      const hsize_t c = shard.c, h = shard.h, w = shard.w;
      RETURN_IF_ERROR(
          WriteDataset(file.get(), "images", H5T_NATIVE_UINT8, {n, c, h, w}, {block, c, h, w}, shard.images.data())
              .Prefixed(tmp));
    }
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

}  // namespace convoy
