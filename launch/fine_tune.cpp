#include "launch/fine_tune.h"

#include <map>

#include "launch/checkpoint.h"

namespace convoy {

StatusOr<std::string> CopyWeightsByName(const proto::Checkpoint& ckpt, const std::string& path, Net* net) {
  std::map<std::string, const proto::ParamBlob*> by_name;
  for (const proto::ParamBlob& p : ckpt.param()) by_name[p.name()] = &p;
  const ParamStore& params = net->params();
  std::string copied, initialised, skipped;
  int copies = 0;
  for (size_t i = 0; i < params.entries().size(); ++i) {
    const ParamEntry& e = params.entries()[i];
    const auto found = by_name.find(e.name);
    if (found == by_name.end()) {
      initialised += " " + e.name + " " + ShapeString(e.decl.shape);
      continue;
    }
    const proto::ParamBlob& blob = *found->second;
    by_name.erase(found);
    const Shape shape(blob.shape().begin(), blob.shape().end());
    if (shape != e.decl.shape) {
      skipped +=
          " " + e.name + " (" + ShapeString(shape) + " in the checkpoint, " + ShapeString(e.decl.shape) + " here)";
      continue;
    }
    Tensor value = params.value(i);
    RETURN_IF_ERROR(RestoreParamBlob(blob, path, &value));
    copied += " " + e.name;
    ++copies;
  }
  if (copies == 0)
    return InvalidInput("--weights " + path + ": none of its " + std::to_string(ckpt.param_size()) +
                        " parameters fits this net by name and shape (the checkpoint's net is '" + ckpt.net().name() +
                        "'; parameters are named <layer>/<index>): is it a checkpoint of another net?");
  std::string unused;
  for (const auto& [name, blob] : by_name) unused += " " + name;
  std::string log = "weights from " + path + " (net '" + ckpt.net().name() + "', iteration " +
                    std::to_string(ckpt.solver_state().iter()) + "): copied " + std::to_string(copies) + ":" + copied +
                    "\n";
  if (!initialised.empty()) log += "  initialised afresh (not in the checkpoint):" + initialised + "\n";
  if (!skipped.empty()) log += "  initialised afresh (shape differs):" + skipped + "\n";
  if (!unused.empty()) log += "  in the checkpoint, not in this net:" + unused + "\n";
  return log;
}

}  // namespace convoy
