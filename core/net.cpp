#include "core/net.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <utility>

#include "core/layer_registry.h"
#include "core/layers/elementwise_layers.h"

namespace convoy {

StatusOr<std::unique_ptr<Net>> Net::Build(const proto::NetSpec& spec, Backend* backend, int batch, uint64_t seed) {
  std::unique_ptr<Net> net(new Net());
  net->backend_ = backend;
  net->batch_ = batch;
  for (int i = 0; i < spec.layer_size(); ++i) RETURN_IF_ERROR(net->AddLayer(spec.layer(i), i));
  if (!net->data_layer_)
    return InvalidInput("net '" + spec.name() +
                        "' has no layer of type Data: add one whose tops "
                        "are the images and labels blobs");

  // Scalar outputs: one-element blobs that no layer reads (losses, accuracies).
  std::map<std::string, bool> read;
  for (const auto& bottoms : net->bottoms_)
    for (const Blob* b : bottoms) read[b->name] = true;
  for (size_t i = 0; i < net->layers_.size(); ++i)
    for (const Blob* t : net->tops_[i])
      if (t->data.count() == 1 && !read[t->name] &&
          std::find(net->scalar_outputs_.begin(), net->scalar_outputs_.end(), t->name) == net->scalar_outputs_.end())
        net->scalar_outputs_.push_back(t->name);
  if (net->loss_blob_.empty())
    return InvalidInput("net '" + spec.name() + "' has no SoftmaxWithLoss layer: nothing to train");
  // A head writes at the index its label gives: only the Data layer's labels are checked to be
  // class numbers (against the dataset, and the dataset against every head).
  const std::string& labels = net->data_layer_->spec().top(1);
  for (size_t i = 0; i < net->layers_.size(); ++i) {
    const Layer& head = *net->layers_[i];
    if (head.label_classes() > 0 && net->bottoms_[i][1]->name != labels)
      return InvalidInput("layer " + std::to_string(i) + ": layer '" + head.name() + "' (" + head.spec().type() +
                          ") reads its labels from '" + net->bottoms_[i][1]->name + "', expected the Data layer's '" +
                          labels + "': it indexes its scores by them");
  }

  for (size_t i = 0; i < net->layers_.size(); ++i) {
    const Layer& layer = *net->layers_[i];
    const auto& mults = layer.spec().param();
    for (size_t p = 0; p < layer.param_decls().size(); ++p) {
      ParamEntry entry;
      entry.name = layer.name() + "/" + std::to_string(p);
      entry.layer = static_cast<int>(i);
      entry.decl = layer.param_decls()[p];
      if (static_cast<int>(p) < mults.size()) {
        entry.lr_mult = mults[p].lr_mult();
        entry.decay_mult = mults[p].decay_mult();
      }
      net->params_.Add(std::move(entry));
    }
  }
  // Parameter sizes come from the spec too: their sum is bounded like any tensor (each count
  // saturates just past the bound, so the sum cannot overflow).
  int64_t param_values = 0;
  const int64_t most = MaxTensorElements(*backend);
  for (const ParamEntry& e : net->params_.entries())
    if ((param_values += e.count()) > most)
      return InvalidInput("net '" + spec.name() + "': parameter '" + e.name + "' " + ShapeString(e.decl.shape) +
                          " brings the parameters past the " + std::to_string(most) + " values a tensor may hold on " +
                          backend->name() + "; make that layer's outputs or kernel smaller");
  net->params_.Allocate(backend, seed);
  // Each layer's parameters, gathered in one pass (a pass per layer was quadratic in depth).
  std::vector<std::vector<Tensor>> values(net->layers_.size()), grads(net->layers_.size());
  for (size_t p = 0; p < net->params_.entries().size(); ++p) {
    const int layer = net->params_.entries()[p].layer;
    values[layer].push_back(net->params_.value(p));
    grads[layer].push_back(net->params_.grad(p));
  }
  for (size_t i = 0; i < net->layers_.size(); ++i)
    net->layers_[i]->BindParams(std::move(values[i]), std::move(grads[i]));
  net->FuseRelus();
  net->PlanLayouts();
  RETURN_IF_ERROR(net->ReshapeAll());
  return net;
}

Status Net::AddLayer(const proto::LayerSpec& spec, int index) {
  const std::string where = "layer " + std::to_string(index) + " '" + spec.name() + "' (" + spec.type() + "): ";
  if (spec.name().empty())
    return InvalidInput("layer " + std::to_string(index) + " (" + spec.type() + "): every layer needs a name");
  if (!layer_names_.insert(spec.name()).second)
    return InvalidInput(where + "the name is used by an earlier layer too; names must be unique");
  ASSIGN_OR_RETURN(std::unique_ptr<Layer> layer, LayerRegistry::Global().Create(spec));

  auto check_count = [&](const char* what, int expected, int found) -> Status {
    if (expected < 0 || expected == found) return Status::Ok();
    return InvalidInput(where + "takes " + std::to_string(expected) + " " + what + ", found " + std::to_string(found));
  };
  RETURN_IF_ERROR(check_count("bottom blobs", layer->NumBottoms(), spec.bottom_size()));
  RETURN_IF_ERROR(check_count("top blobs", layer->NumTops(), spec.top_size()));

  std::vector<Blob*> bottoms, tops;
  std::vector<bool> propagate;
  for (const std::string& name : spec.bottom()) {
    auto it = blobs_.find(name);
    if (it == blobs_.end()) {
      std::string known;
      for (const auto& [blob_name, blob] : blobs_) known += (known.empty() ? "" : ", ") + blob_name;
      return InvalidInput(where + "bottom '" + name +
                          "' is not the top of any earlier layer; "
                          "blobs defined so far: " +
                          (known.empty() ? "none" : known));
    }
    bottoms.push_back(it->second.get());
    propagate.push_back(std::find(blob_needs_grad_names_.begin(), blob_needs_grad_names_.end(), name) !=
                        blob_needs_grad_names_.end());
  }
  for (const std::string& name : spec.top()) {
    auto it = blobs_.find(name);
    if (it != blobs_.end()) {
      const bool in_place = layer->AllowsInPlace() && spec.bottom_size() == 1 && spec.bottom(0) == name;
      if (!in_place)
        return InvalidInput(where + "top '" + name +
                            "' is already the top of an earlier layer; "
                            "only element-wise layers (ReLU, Dropout) may write in place");
      tops.push_back(it->second.get());
      continue;
    }
    auto blob = std::make_unique<Blob>();
    blob->name = name;
    blob->data = Tensor(backend_, {0});
    blob->diff = Tensor(backend_, {0});
    tops.push_back(blob.get());
    blobs_[name] = std::move(blob);
  }

  if (auto* data = dynamic_cast<DataLayer*>(layer.get())) {
    if (data_layer_) return InvalidInput(where + "a net takes one Data layer, this is the second");
    data->set_batch(batch_);
    data_layer_ = data;
  }
  RETURN_IF_ERROR(layer->Setup(backend_, bottoms).Prefixed("layer " + std::to_string(index)));
  RETURN_IF_ERROR(layer->Reshape(bottoms, tops).Prefixed("layer " + std::to_string(index)));
  if (spec.type() == "SoftmaxWithLoss" && loss_blob_.empty()) loss_blob_ = spec.top(0);

  const bool has_params = !layer->param_decls().empty();
  const bool any_propagate = std::find(propagate.begin(), propagate.end(), true) != propagate.end();
  const bool backward = layer->HasBackward() && (has_params || any_propagate);
  if (!backward) std::fill(propagate.begin(), propagate.end(), false);
  const bool in_place = !tops.empty() && !bottoms.empty() && tops[0] == bottoms[0];
  for (size_t b = 0; b < bottoms.size(); ++b)
    if (propagate[b]) RETURN_IF_ERROR(BranchGradient(where, index, in_place, &bottoms[b]));
  for (Blob* top : tops) {
    first_consumer_.erase(top->name);  // a new value of the blob (in place or fresh)
    auto& names = blob_needs_grad_names_;
    const bool listed = std::find(names.begin(), names.end(), top->name) != names.end();
    if (backward && !listed) names.push_back(top->name);
    if (!backward && listed) names.erase(std::find(names.begin(), names.end(), top->name));
  }
  layers_.push_back(std::move(layer));
  bottoms_.push_back(std::move(bottoms));
  tops_.push_back(std::move(tops));
  propagate_.push_back(std::move(propagate));
  needs_backward_.push_back(backward);
  RETURN_IF_ERROR(CheckSizes(layers_.size() - 1));
  return Status::Ok();
}

Status Net::BranchGradient(const std::string& where, int index, bool in_place, Blob** bottom) {
  Blob* source = *bottom;
  auto first = first_consumer_.find(source->name);
  if (first == first_consumer_.end()) {
    first_consumer_[source->name] = index;
    return Status::Ok();
  }
  if (in_place)
    return InvalidInput(where + "writes blob '" + source->name + "' in place, but layer '" +
                        layers_[first->second]->name() +
                        "' reads it too and needs its old value's "
                        "gradient: give this layer's top a new name");
  auto branch = std::make_unique<Blob>();
  branch->name = source->name;
  branch->data = Tensor::View(source->data, 0, source->data.shape());
  branch->diff = Tensor(backend_, source->data.shape());
  *bottom = branch.get();
  branches_.push_back({source, std::move(branch), first->second});
  return Status::Ok();
}

// A ReLU that works in place on the output of the layer just before it is applied by that
// layer inside its own output pass (and, where the layer can, its gradient inside the layer's
// backward): one pass over the activations instead of two.
void Net::FuseRelus() {
  for (size_t i = 1; i < layers_.size(); ++i) {
    auto* relu = dynamic_cast<ReluLayer*>(layers_[i].get());
    if (!relu || relu->slope() != 0.f || bottoms_[i][0] != tops_[i][0]) continue;
    if (tops_[i - 1].size() != 1 || tops_[i - 1][0] != bottoms_[i][0]) continue;
    const ReluFusion fusion = layers_[i - 1]->relu_fusion();
    if (fusion == ReluFusion::kNone) continue;
    layers_[i - 1]->fuse_relu();
    relu->set_fused(fusion);
  }
}

// Channel-blocked images (Backend's "channel-blocked images") wherever every layer that reads or
// writes them can take that: a blob starts blocked if it is an N x C x H x W image with C a
// multiple of the block, then each layer whose LayoutRule cannot take what its blobs hold turns
// them plain, until nothing changes. In a ResNet every image blob between the first convolution
// and the global pooling stays blocked, so convolutions reorder nothing.
void Net::PlanLayouts() {
  if (!backend_->KeepsBlockedImages()) return;
  for (auto& [name, blob] : blobs_) {
    const Tensor& t = blob->data;
    blob->blocked = t.num_axes() == 4 && t.dim(1) > 0 && t.dim(1) % Backend::kChannelBlock == 0;
  }
  const auto source = [&](Blob* b) {
    for (const GradBranch& g : branches_)
      if (g.branch.get() == b) return g.source;
    return b;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const LayoutRule rule = layers_[i]->layout_rule(*backend_);
      if (rule == LayoutRule::kAny) continue;
      std::vector<Blob*> touched(tops_[i]);
      for (Blob* b : bottoms_[i]) touched.push_back(source(b));
      const bool mixed = std::any_of(touched.begin(), touched.end(), [](Blob* b) { return !b->blocked; });
      if (rule == LayoutRule::kSame && !mixed) continue;
      for (Blob* b : touched) changed |= std::exchange(b->blocked, false);
    }
  }
  for (GradBranch& g : branches_) g.branch->blocked = g.source->blocked;
}

void Net::MemoryEstimate::Add(const std::string& layer, int64_t output_bytes, int64_t workspace_bytes) {
  blobs += output_bytes;
  workspace = workspace_bytes;
  largest.emplace_back(output_bytes, layer);
  std::sort(largest.begin(), largest.end(), std::greater<>());
  if (largest.size() > 3) largest.pop_back();
}

std::string Net::MemoryEstimate::Refusal(const Net& net) const {
  auto gb = [](int64_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f GB", static_cast<double>(bytes) / 1e9);
    return std::string(text);
  };
  std::string names;
  for (const auto& [bytes, layer] : largest) names += (names.empty() ? "" : ", ") + layer + " (" + gb(bytes) + ")";
  return "the net needs more than " + gb(total()) + " for a batch of " + std::to_string(net.batch_) + " on " +
         net.backend_->name() + " (blobs and their gradients " + gb(blobs) + ", parameters and solver state " +
         gb(parameters) + ", workspace " + gb(workspace) + "), more than its " + gb(net.backend_->memory_bytes()) +
         "; the largest layers by output: " + names + "; make the batch or those layers smaller";
}

Status Net::CheckSizes(size_t i) const {
  const Layer& layer = *layers_[i];
  const std::string where = "layer " + std::to_string(i) + " '" + layer.name() + "' (" + layer.spec().type() + "): ";
  const int64_t most = MaxTensorElements(*backend_);
  const std::string limit = std::to_string(most) + " values a tensor may hold on " + backend_->name();
  for (const Blob* top : tops_[i])
    if (top->data.count() > most)
      return InvalidInput(where + "its top '" + top->name + "' would be " + top->data.shape_string() +
                          ", more than the " + limit + "; make the batch, the images or the layer's outputs smaller");
  if (layer.WorkspaceSize() > most)
    return InvalidInput(where + "its workspace would need " + std::to_string(layer.WorkspaceSize()) +
                        " values, more than the " + limit + "; make the batch or the layer smaller");
  return Status::Ok();
}

Status Net::ReshapeAll() {
  int64_t workspace = 0;
  // What the batch will need, counted as the layers are shaped and checked before their
  // gradients are allocated and zeroed (values are not touched until used): each new blob twice
  // (values and gradients), the parameters four times (values, gradients, two solver moments),
  // the largest workspace. Past the device's memory the net is refused naming its largest layers
  // instead of failing in an allocation later.
  MemoryEstimate estimate;
  estimate.parameters = params_.total_count() * 4 * static_cast<int64_t>(sizeof(float));
  for (size_t i = 0; i < layers_.size(); ++i) {
    // Branches follow their source, whose storage may have just moved (it only grows).
    for (GradBranch& g : branches_) {
      g.branch->data = Tensor::View(g.source->data, 0, g.source->data.shape());
      g.branch->diff.Reshape(g.source->data.shape());
    }
    RETURN_IF_ERROR(layers_[i]->Reshape(bottoms_[i], tops_[i]));
    RETURN_IF_ERROR(CheckSizes(i));
    workspace = std::max(workspace, layers_[i]->WorkspaceSize());
    int64_t outputs = 0;
    for (const Blob* top : tops_[i])
      if (std::find(bottoms_[i].begin(), bottoms_[i].end(), top) == bottoms_[i].end())  // in place: no new memory
        outputs += 2 * top->data.count() * static_cast<int64_t>(sizeof(float));
    estimate.Add(layers_[i]->name(), outputs, workspace * static_cast<int64_t>(sizeof(float)));
    if (estimate.total() > backend_->memory_bytes()) return InvalidInput(estimate.Refusal(*this));
    for (Blob* top : tops_[i]) top->diff.Reshape(top->data.shape());
  }
  if (workspace_.backend() == nullptr) workspace_ = Tensor(backend_, {0});
  workspace_.Reshape({workspace});
  // Diffs no layer writes (a trainable blob read only by metrics) must read as zero.
  for (auto& [name, blob] : blobs_)
    if (blob->diff.count() > 0) backend_->Fill(blob->diff.count(), 0.f, blob->diff.mutable_data());
  return Status::Ok();
}

Status Net::SetBatch(int batch) {
  if (batch == batch_) return Status::Ok();
  batch_ = batch;
  data_layer_->set_batch(batch);
  return ReshapeAll();
}

StepContext Net::Context(bool train, uint64_t seed, uint64_t step) {
  StepContext ctx;
  ctx.backend = backend_;
  ctx.train = train;
  ctx.seed = seed;
  ctx.step = step;
  ctx.workspace = workspace_.mutable_data();
  return ctx;
}

void Net::ForwardLayer(size_t i, const StepContext& ctx) { layers_[i]->Forward(ctx, bottoms_[i], tops_[i]); }

void Net::BackwardLayer(size_t i, const StepContext& ctx) {
  if (!needs_backward_[i]) return;
  layers_[i]->Backward(ctx, tops_[i], propagate_[i], bottoms_[i]);
  for (const GradBranch& g : branches_)
    if (g.sum_after_layer == static_cast<int>(i))
      backend_->Axpy(g.source->diff.count(), 1.f, g.branch->diff.data(), g.source->diff.mutable_data());
}

void Net::Forward(const StepContext& ctx) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (observer_) observer_->Enter(static_cast<int>(i), false);
    ForwardLayer(i, ctx);
    if (observer_) observer_->Leave(static_cast<int>(i), false);
  }
}

void Net::Backward(const StepContext& ctx) {
  for (size_t i = layers_.size(); i-- > 0;) {
    const bool observed = observer_ && needs_backward_[i];
    if (observed) observer_->Enter(static_cast<int>(i), true);
    BackwardLayer(i, ctx);
    if (observed) observer_->Leave(static_cast<int>(i), true);
    if (after_backward_) after_backward_(static_cast<int>(i), needs_backward_[i] && !layers_[i]->param_decls().empty());
  }
}

const Blob* Net::blob(const std::string& name) const {
  auto it = blobs_.find(name);
  return it == blobs_.end() ? nullptr : it->second.get();
}

float Net::ReadScalar(const std::string& blob) const {
  float value = 0.f;
  backend_->CopyToHost(blobs_.at(blob)->data.data(), 1, &value);
  return value;
}

const Blob* Net::scores() const {
  for (size_t i = 0; i < layers_.size(); ++i)
    if (!tops_[i].empty() && tops_[i][0]->name == loss_blob_) return bottoms_[i][0];
  return nullptr;
}

int64_t Net::num_outputs() const {
  const Blob* s = scores();
  return s ? s->data.count() / s->data.dim(0) : 0;
}

}  // namespace convoy
