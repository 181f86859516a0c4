#include "core/text_format.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"

namespace convoy {
namespace {

// Collects the parser's complaints as "file:line:column: message" (1-based, as editors count).
class Collector final : public google::protobuf::io::ErrorCollector {
 public:
  explicit Collector(std::string source) : source_(std::move(source)) {}
  void AddError(int line, int column, const std::string& message) override { Add(line, column, message); }
  void AddWarning(int line, int column, const std::string& message) override {
    Add(line, column, "warning: " + message);
  }
  const std::string& text() const { return text_; }

 private:
  void Add(int line, int column, const std::string& message) {
    if (!text_.empty()) text_ += "\n";
    text_ += source_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  std::string source_;
  std::string text_;
};

}  // namespace

StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Status ParseTextProto(const std::string& text, const std::string& source_name, google::protobuf::Message* message) {
  Collector collector(source_name);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  if (!parser.ParseFromString(text, message))
    return InvalidInput(collector.text().empty() ? source_name + ": cannot parse" : collector.text());
  return Status::Ok();
}

Status ReadTextProto(const std::string& path, google::protobuf::Message* message) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseTextProto(text, path, message);
}

Status WriteTextProto(const std::string& path, const google::protobuf::Message& message) {
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(message, &text))
    return Internal(path + ": cannot print " + message.GetTypeName());
  return WriteFileAtomically(path, text);
}

}  // namespace convoy
