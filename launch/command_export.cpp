// convoy export --checkpoint C --format onnx --out model.onnx (launch/onnx_export.h), written
// atomically: a whole model or none.
#include <cstdio>

#include "core/atomic_file.h"
#include "launch/checkpoint.h"
#include "launch/commands.h"
#include "launch/onnx_export.h"

namespace convoy {

int RunExport(int argc, char** argv) {
  Flags flags("export",
              "Writes a checkpoint as a model other engines run: --format onnx (opset 13; raw 0-255 pixels in,\n"
              "the training set's normalisation included, class probabilities out).",
              {{"checkpoint", "the checkpoint file", "", false, true},
               {"format", "onnx", "onnx"},
               {"out", "the model file to write", "", false, true}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  if (flags.Get("format") != "onnx")
    return Finish(InvalidInput("--format " + flags.Get("format") + ": the formats are: onnx"));
  StatusOr<proto::Checkpoint> ckpt = LoadCheckpoint(flags.Get("checkpoint"));
  if (!ckpt.ok()) return Finish(ckpt.status());
  StatusOr<OnnxExport> model = ExportOnnx(*ckpt);
  if (!model.ok()) return Finish(model.status().Prefixed(flags.Get("checkpoint")));
  const std::string& out = flags.Get("out");
  if (Status written = WriteFileAtomically(out, model->model); !written.ok())
    return Finish(InvalidInput(written.message() + "; give --out a file in a folder that exists and is writable"));
  std::printf("exported %s (net '%s', iteration %llu) to %s: %s, %.1f MB\n", flags.Get("checkpoint").c_str(),
              ckpt->net().name().c_str(), static_cast<unsigned long long>(ckpt->solver_state().iter()), out.c_str(),
              model->summary.c_str(), model->model.size() / 1e6);
  return 0;
}

}  // namespace convoy
