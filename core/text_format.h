// Reading protobuf text files (nets, solvers, manifests) with errors a user can act on:
// "configs/lenet.prototxt:12:5: Message type "convoy.proto.LayerSpec" has no field named "botom"."
#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "core/status.h"

namespace convoy {

Status ReadTextProto(const std::string& path, google::protobuf::Message* message);
Status ParseTextProto(const std::string& text, const std::string& source_name, google::protobuf::Message* message);
// Writes atomically: a temp file in the same folder, then rename.
Status WriteTextProto(const std::string& path, const google::protobuf::Message& message);
StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace convoy
