#include "core/text_format.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

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

// The first float or double field anywhere in `message` that is not finite, as
// "layer[3].dropout_param.dropout_ratio = inf", or "" when every one is.
std::string FirstNonFinite(const google::protobuf::Message& message, const std::string& prefix) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      std::string name = prefix + field->name();
      // Appended, not "[" + ... + "]": GCC 12 warned (-Wrestrict) of an overlap in that temporary.
      if (field->is_repeated()) name += '[' + std::to_string(i) + ']';
      double value = 0;
      switch (field->cpp_type()) {
        case FieldDescriptor::CPPTYPE_MESSAGE: {
          const auto& child = field->is_repeated() ? reflection->GetRepeatedMessage(message, field, i)
                                                   : reflection->GetMessage(message, field);
          const std::string found = FirstNonFinite(child, name + ".");
          if (!found.empty()) return found;
          continue;
        }
        case FieldDescriptor::CPPTYPE_FLOAT:
          value = field->is_repeated() ? reflection->GetRepeatedFloat(message, field, i)
                                       : reflection->GetFloat(message, field);
          break;
        case FieldDescriptor::CPPTYPE_DOUBLE:
          value = field->is_repeated() ? reflection->GetRepeatedDouble(message, field, i)
                                       : reflection->GetDouble(message, field);
          break;
        default:
          continue;
      }
      if (!std::isfinite(value)) return name + " = " + std::to_string(value);
    }
  }
  return "";
}

}  // namespace

StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    return InvalidInput(path + ": is not a regular file (a FIFO or device would block or never end)");
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
  // inf or nan in a size, rate or ratio would make training loop forever or learn nothing.
  const std::string non_finite = FirstNonFinite(*message, "");
  if (!non_finite.empty()) return InvalidInput(source_name + ": field " + non_finite + " must be a finite number");
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
