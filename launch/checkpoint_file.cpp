#include "launch/checkpoint_file.h"

#include <cstring>
#include <fstream>

#include "core/atomic_file.h"
#include "core/checksum.h"

namespace convoy {
namespace {

constexpr char kMagic[8] = {'C', 'O', 'N', 'V', 'O', 'Y', 'C', 'K'};
constexpr size_t kChunkBytes = size_t{16} << 20;

// All tensors of a checkpoint in file order: parameters, then the solver's buffers.
std::vector<proto::ParamBlob*> Tensors(proto::Checkpoint* ckpt) {
  std::vector<proto::ParamBlob*> all;
  for (auto& p : *ckpt->mutable_param()) all.push_back(&p);
  for (auto& m : *ckpt->mutable_solver_state()->mutable_momentum()) all.push_back(&m);
  for (auto& m : *ckpt->mutable_solver_state()->mutable_second_moment()) all.push_back(&m);
  return all;
}

class RecordWriter {
 public:
  explicit RecordWriter(AtomicFile* file) : file_(file) {}
  Status Raw(const void* data, size_t size) {
    hash_.Update(data, size);
    return file_->Write(data, size);
  }
  Status Record(const google::protobuf::Message& m) {
    std::string bytes;
    if (!m.SerializeToString(&bytes)) return Internal("cannot serialise a checkpoint record");
    const uint64_t size = bytes.size();  // little-endian on every machine convoy builds for
    RETURN_IF_ERROR(Raw(&size, sizeof size));
    ++records_;
    return Raw(bytes.data(), bytes.size());
  }
  uint64_t records() const { return records_; }
  uint64_t digest() const { return hash_.digest(); }

 private:
  AtomicFile* file_;
  Fnv1a64 hash_;
  uint64_t records_ = 0;
};

}  // namespace

Status WriteCheckpointFile(const std::string& path, const proto::Checkpoint& ckpt) {
  proto::Checkpoint meta = ckpt;
  const std::vector<proto::ParamBlob*> tensors = Tensors(&meta);
  std::vector<std::string> values;
  for (proto::ParamBlob* t : tensors) values.push_back(std::move(*t->mutable_data())), t->clear_data();
  AtomicFile file;
  RETURN_IF_ERROR(file.Open(path));
  RecordWriter out(&file);
  RETURN_IF_ERROR(out.Raw(kMagic, sizeof kMagic));
  RETURN_IF_ERROR(out.Record(meta));
  for (size_t t = 0; t < values.size(); ++t)
    for (size_t at = 0; at < values[t].size(); at += kChunkBytes) {
      proto::ParamChunk chunk;
      chunk.set_tensor(static_cast<uint32_t>(t));
      chunk.set_offset(at / sizeof(float));
      chunk.set_data(values[t].substr(at, kChunkBytes));
      RETURN_IF_ERROR(out.Record(chunk));
    }
  proto::CheckpointFooter footer;
  footer.set_records(out.records());
  footer.set_fnv1a64(out.digest());
  std::string bytes = footer.SerializeAsString();
  const uint64_t size = bytes.size();
  RETURN_IF_ERROR(file.Write(&size, sizeof size));
  RETURN_IF_ERROR(file.Write(bytes.data(), bytes.size()));
  return file.Commit();
}

StatusOr<proto::Checkpoint> ReadCheckpointFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open the checkpoint");
  Fnv1a64 hash;
  char magic[sizeof kMagic];
  if (!in.read(magic, sizeof magic) || std::memcmp(magic, kMagic, sizeof kMagic) != 0)
    return DataError(path + ": not a convoy checkpoint (it does not start with CONVOYCK)");
  hash.Update(magic, sizeof magic);
  // Reads one record; false at a clean end of file.
  auto next = [&](std::string* bytes, bool* eof) -> Status {
    uint64_t size = 0;
    if (!in.read(reinterpret_cast<char*>(&size), sizeof size)) {
      *eof = true;
      return Status::Ok();
    }
    if (size > (uint64_t{1} << 31))
      return DataError(path + ": corrupt (a record claims " + std::to_string(size) + " bytes)");
    bytes->resize(size);
    if (!in.read(bytes->data(), static_cast<std::streamsize>(size)))
      return DataError(path + ": truncated in the middle of a record (the write was cut short?)");
    hash.Update(&size, sizeof size);
    return Status::Ok();
  };
  proto::Checkpoint ckpt;
  std::vector<std::string> records;
  while (true) {
    std::string bytes;
    bool eof = false;
    const uint64_t digest_before = hash.digest();
    RETURN_IF_ERROR(next(&bytes, &eof));
    if (eof) return DataError(path + ": truncated (no footer: the write was cut short?)");
    proto::CheckpointFooter footer;
    // The footer is the record after which the file ends.
    if (in.peek() == std::char_traits<char>::eof() && footer.ParseFromString(bytes) && footer.has_fnv1a64()) {
      if (footer.records() != records.size() || footer.fnv1a64() != digest_before)
        return DataError(path + ": checksum mismatch: the checkpoint is damaged");
      break;
    }
    hash.Update(bytes.data(), bytes.size());
    records.push_back(std::move(bytes));
  }
  if (records.empty() || !ckpt.ParseFromString(records[0]))
    return DataError(path + ": the checkpoint header does not parse");
  std::vector<proto::ParamBlob*> tensors = Tensors(&ckpt);
  for (size_t r = 1; r < records.size(); ++r) {
    proto::ParamChunk chunk;
    if (!chunk.ParseFromString(records[r]) || chunk.tensor() >= tensors.size())
      return DataError(path + ": record " + std::to_string(r) + " is not a valid tensor chunk");
    std::string* data = tensors[chunk.tensor()]->mutable_data();
    if (chunk.offset() * sizeof(float) != data->size()) return DataError(path + ": tensor chunks out of order");
    data->append(chunk.data());
  }
  return ckpt;
}

}  // namespace convoy
