#include "launch/onnx_export.h"

#include <map>
#include <set>

#include "core/backend.h"
#include "core/net.h"
#include "core/proto/onnx_model.pb.h"

namespace convoy {
namespace {

constexpr int kOpset = 13;
constexpr int kIrVersion = 7;  // ONNX 1.8 and later read it

using onnx::AttributeProto;
using onnx::NodeProto;
using onnx::TensorProto;

// Builds the graph: unique value names (ONNX values are assigned once; convoy's in-place layers
// reuse a blob's name), initializers, nodes.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* graph) : graph_(graph) {}

  // A fresh value name from a layer's name.
  std::string Fresh(const std::string& base) {
    std::string name = base;
    for (int i = 2; !used_.insert(name).second; ++i) name = base + "_" + std::to_string(i);
    return name;
  }
  // The ONNX value a convoy blob holds now.
  StatusOr<std::string> Value(const std::string& blob, const std::string& layer) const {
    const auto it = current_.find(blob);
    if (it == current_.end())
      return InvalidInput("layer '" + layer + "': its bottom '" + blob + "' comes from no exported layer");
    return it->second;
  }
  void Bind(const std::string& blob, const std::string& value) { current_[blob] = value; }

  std::string Initializer(const std::string& name, const std::vector<int64_t>& dims, const std::string& raw) {
    TensorProto* t = graph_->add_initializer();
    t->set_name(Fresh(name));
    for (int64_t d : dims) t->add_dims(d);
    t->set_data_type(TensorProto::FLOAT);
    t->set_raw_data(raw);
    return t->name();
  }
  std::string Constant(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& values) {
    return Initializer(name, dims, std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  }

  NodeProto* Node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                  const std::string& output) {
    NodeProto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(output);
    return n;
  }
  static void Ints(NodeProto* n, const std::string& name, const std::vector<int64_t>& values) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }
  static void Int(NodeProto* n, const std::string& name, int64_t value) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::INT);
    a->set_i(value);
  }
  static void Float(NodeProto* n, const std::string& name, float value) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(AttributeProto::FLOAT);
    a->set_f(value);
  }

 private:
  onnx::GraphProto* graph_;
  std::set<std::string> used_;
  std::map<std::string, std::string> current_;
};

void Describe(onnx::ValueInfoProto* v, const std::string& name, const std::vector<int64_t>& dims) {
  v->set_name(name);
  auto* tensor = v->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(TensorProto::FLOAT);
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* d = tensor->mutable_shape()->add_dim();
    if (i == 0)
      d->set_dim_param("N");  // any batch size
    else
      d->set_dim_value(dims[i]);
  }
}

// Pads (begin, end) that make ONNX's rounded-down pooling give Caffe's rounded-up output.
int64_t ExtraEndPad(const PoolShape& s, int size) {
  const int floor_out = (size + 2 * s.pad - s.kernel) / s.stride + 1;
  const int out = s.Out(size);
  return out > floor_out ? static_cast<int64_t>(out - 1) * s.stride + s.kernel - (size + 2 * s.pad) : 0;
}

}  // namespace

StatusOr<OnnxExport> ExportOnnx(const proto::Checkpoint& ckpt) {
  // The net as convoy builds it (which also checks the specs), for every blob's shape.
  ASSIGN_OR_RETURN(Backend * cpu, GetBackend("cpu"));
  ASSIGN_OR_RETURN(std::unique_ptr<Net> net, Net::Build(ckpt.net(), cpu, 1, 1));
  std::map<std::string, const proto::ParamBlob*> params;
  for (const auto& p : ckpt.param()) params[p.name()] = &p;
  auto param = [&](const std::string& layer, int index) -> StatusOr<const proto::ParamBlob*> {
    const auto it = params.find(layer + "/" + std::to_string(index));
    if (it == params.end())
      return DataError("the checkpoint has no parameter '" + layer + "/" + std::to_string(index) + "'");
    return it->second;
  };
  auto shape_of = [&](const std::string& blob) {
    const Blob* b = net->blob(blob);
    return b ? b->data.shape() : Shape{};
  };

  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("convoy");
  model.set_producer_version(ckpt.convoy_version());
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(ckpt.net().name().empty() ? "convoy" : ckpt.net().name());
  GraphBuilder g(graph);

  std::string unsupported, probabilities;
  int64_t classes = 0, parameters = 0;
  for (const proto::LayerSpec& layer : ckpt.net().layer()) {
    const std::string& type = layer.type();
    const std::string& name = layer.name();
    if (type == "Data") {
      const Shape in = shape_of(layer.top(0));
      const int64_t c = in.size() == 4 ? in[1] : 1;
      Describe(graph->add_input(), g.Fresh("pixels"), {1, in[1], in[2], in[3]});
      // (pixel - mean) / std per channel, as convoy feeds the net (io/normalization.h).
      std::vector<float> mean(c, 0.f), std(c, 255.f);
      for (int64_t i = 0; i < c; ++i) {
        if (i < ckpt.input_mean_size()) mean[i] = ckpt.input_mean(i);
        if (i < ckpt.input_std_size() && ckpt.input_std(i) > 0) std[i] = ckpt.input_std(i);
      }
      const std::string centred = g.Fresh("centred"), normalised = g.Fresh("normalised");
      g.Node("Sub", "subtract_mean", {"pixels", g.Constant("mean", {1, c, 1, 1}, mean)}, centred);
      g.Node("Div", "divide_by_std", {centred, g.Constant("std", {1, c, 1, 1}, std)}, normalised);
      g.Bind(layer.top(0), normalised);
      continue;
    }
    if (type == "Accuracy") continue;
    std::vector<std::string> in;
    // The loss's second bottom is the labels, which inference has not.
    const int inputs = type == "SoftmaxWithLoss" ? 1 : layer.bottom_size();
    for (int i = 0; i < inputs; ++i) {
      ASSIGN_OR_RETURN(std::string v, g.Value(layer.bottom(i), name));
      in.push_back(v);
    }
    if (type == "Dropout") {  // the identity at inference
      g.Bind(layer.top(0), in[0]);
      continue;
    }
    const std::string out = g.Fresh(name);
    auto weights = [&](int index) -> StatusOr<std::string> {
      ASSIGN_OR_RETURN(const proto::ParamBlob* p, param(name, index));
      parameters += static_cast<int64_t>(p->data().size() / 4);
      return g.Initializer(p->name(), std::vector<int64_t>(p->shape().begin(), p->shape().end()), p->data());
    };
    if (type == "Convolution") {
      const auto& p = layer.convolution_param();
      ASSIGN_OR_RETURN(std::string w, weights(0));
      std::vector<std::string> inputs = {in[0], w};
      if (p.bias_term()) {
        ASSIGN_OR_RETURN(std::string b, weights(1));
        inputs.push_back(b);
      }
      NodeProto* n = g.Node("Conv", name, inputs, out);
      const int64_t k = p.kernel_size(), s = p.stride(), pad = p.pad();
      GraphBuilder::Ints(n, "kernel_shape", {k, k});
      GraphBuilder::Ints(n, "strides", {s, s});
      GraphBuilder::Ints(n, "pads", {pad, pad, pad, pad});
      if (p.group() > 1) GraphBuilder::Int(n, "group", p.group());  // the weights' layout is ONNX's already
    } else if (type == "ReLU") {
      const float slope = layer.relu_param().negative_slope();
      NodeProto* n = g.Node(slope == 0.f ? "Relu" : "LeakyRelu", name, {in[0]}, out);
      if (slope != 0.f) GraphBuilder::Float(n, "alpha", slope);
    } else if (type == "Pooling") {
      const auto& p = layer.pooling_param();
      const bool max = p.pool() == proto::PoolingParam::MAX;
      if (p.global_pooling()) {
        g.Node(max ? "GlobalMaxPool" : "GlobalAveragePool", name, {in[0]}, out);
      } else {
        const Shape x = shape_of(layer.bottom(0));
        PoolShape s;
        s.kernel = static_cast<int>(p.kernel_size()), s.stride = static_cast<int>(p.stride()),
        s.pad = static_cast<int>(p.pad());
        const int64_t extra_h = ExtraEndPad(s, static_cast<int>(x[2])),
                      extra_w = ExtraEndPad(s, static_cast<int>(x[3]));
        const bool clipped = extra_h > 0 || extra_w > 0;
        // Caffe's average counts the padding inside `pad`, not what the rounding up adds.
        if (!max && clipped && s.pad > 0) {
          unsupported += "\n  layer '" + name + "' (Pooling): average pooling with pad " + std::to_string(s.pad) +
                         " whose last window is cut short by the padding; ONNX's AveragePool counts all of it or "
                         "none (choose sizes where (size + 2 pad - kernel) is a multiple of the stride)";
          g.Bind(layer.top(0), out);  // so the layers after it are checked too
          continue;
        }
        NodeProto* n = g.Node(max ? "MaxPool" : "AveragePool", name, {in[0]}, out);
        GraphBuilder::Ints(n, "kernel_shape", {s.kernel, s.kernel});
        GraphBuilder::Ints(n, "strides", {s.stride, s.stride});
        GraphBuilder::Ints(n, "pads", {s.pad, s.pad, s.pad + extra_h, s.pad + extra_w});
        if (!max) GraphBuilder::Int(n, "count_include_pad", clipped ? 0 : 1);
      }
    } else if (type == "InnerProduct") {
      const auto& p = layer.inner_product_param();
      std::string x = in[0];
      if (shape_of(layer.bottom(0)).size() != 2) {
        x = g.Fresh(name + "_flat");
        GraphBuilder::Int(g.Node("Flatten", name + "_flatten", {in[0]}, x), "axis", 1);
      }
      ASSIGN_OR_RETURN(std::string w, weights(0));
      std::vector<std::string> inputs = {x, w};
      if (p.bias_term()) {
        ASSIGN_OR_RETURN(std::string b, weights(1));
        inputs.push_back(b);
      }
      GraphBuilder::Int(g.Node("Gemm", name, inputs, out), "transB", 1);
    } else if (type == "BatchNorm") {
      std::vector<std::string> inputs = {in[0]};
      for (int i = 0; i < 4; ++i) {  // gamma, beta, running mean, running variance
        ASSIGN_OR_RETURN(std::string v, weights(i));
        inputs.push_back(v);
      }
      GraphBuilder::Float(g.Node("BatchNormalization", name, inputs, out), "epsilon", layer.batch_norm_param().eps());
    } else if (type == "Eltwise") {
      const auto& coeff = layer.eltwise_param().coeff();
      std::vector<std::string> terms;
      for (size_t i = 0; i < in.size(); ++i) {
        const float c = static_cast<int>(i) < coeff.size() ? coeff[static_cast<int>(i)] : 1.f;
        if (c == 1.f) {
          terms.push_back(in[i]);
          continue;
        }
        const std::string scaled = g.Fresh(name + "_term" + std::to_string(i));
        g.Node("Mul", scaled, {in[i], g.Constant(name + "_coeff" + std::to_string(i), {}, {c})}, scaled);
        terms.push_back(scaled);
      }
      std::string sum = terms[0];
      for (size_t i = 1; i < terms.size(); ++i) {
        const std::string next = i + 1 == terms.size() ? out : g.Fresh(name + "_sum" + std::to_string(i));
        g.Node("Add", i + 1 == terms.size() ? name : next, {sum, terms[i]}, next);
        sum = next;
      }
      if (terms.size() == 1) g.Node("Identity", name, {sum}, out);
    } else if (type == "Concat") {
      GraphBuilder::Int(g.Node("Concat", name, in, out), "axis", layer.concat_param().axis());
    } else if (type == "Flatten") {
      GraphBuilder::Int(g.Node("Flatten", name, {in[0]}, out), "axis", 1);
    } else if (type == "SoftmaxWithLoss") {
      probabilities = g.Fresh("probabilities");
      GraphBuilder::Int(g.Node("Softmax", name, {in[0]}, probabilities), "axis", 1);
      classes = shape_of(layer.bottom(0)).back();
      continue;  // its top is the loss, which inference has not
    } else {
      unsupported += "\n  layer '" + name + "' (" + type + "): no ONNX export for this type yet";
    }
    g.Bind(layer.top(0), out);
  }
  if (!unsupported.empty()) return InvalidInput("these layers cannot be exported to ONNX:" + unsupported);
  if (probabilities.empty())
    return InvalidInput("the net has no SoftmaxWithLoss layer, whose scores the model's probabilities would be");
  Describe(graph->add_output(), probabilities, {1, classes});
  OnnxExport result;
  if (!model.SerializeToString(&result.model)) return Internal("cannot serialise the ONNX model");
  result.summary = std::to_string(graph->node_size()) + " nodes, " + std::to_string(graph->initializer_size()) +
                   " initializers, " + std::to_string(parameters) + " parameters, opset " + std::to_string(kOpset);
  return result;
}

}  // namespace convoy
