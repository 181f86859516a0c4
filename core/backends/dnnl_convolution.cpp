#include "core/backends/dnnl_convolution.h"

#include <omp.h>

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

namespace convoy {

using dnnl::memory;
using Tag = memory::format_tag;

struct DnnlConvolution::Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
};

namespace {

enum Kind { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };
// The three tensors of a convolution. In each pass two are read and one is written (with the
// bias, or its gradient, beside it in convoy's plain layout).
enum Role { kSrc = 0, kWeights = 1, kDst = 2 };
constexpr Role kWritten[] = {kDst, kSrc, kWeights};  // by kind

using Type = memory::data_type;

memory::desc Desc(const memory::dims& dims, Tag tag, Type type = Type::f32) { return memory::desc(dims, type, tag); }

struct Dims {
  memory::dims src, weights, bias, dst, strides, padding;
  Tag src_tag, dst_tag;
  dnnl::algorithm algo;
  Tag weights_tag;
  // What each pass reads: bf16 under precision kBfloat16 (AMX or AVX-512 BF16 kernels, oneDNN's
  // reorders rounding convoy's fp32 tensors to nearest even), else fp32. What a pass writes
  // (y, dx, dw, db) is fp32 either way.
  Type read;
  Dims(const ConvShape& s, dnnl::algorithm algorithm)
      : src{s.n, s.c, s.h, s.w},
        // Grouped: oneDNN's g x K/g x C/g x KH x KW is convoy's K x C/g x KH x KW, the same bytes.
        weights{s.groups > 1 ? memory::dims{s.groups, s.k / s.groups, s.c / s.groups, s.kh, s.kw}
                             : memory::dims{s.k, s.c, s.kh, s.kw}},
        bias{s.k},
        dst{s.n, s.k, s.oh(), s.ow()},
        strides{s.stride, s.stride},
        padding{s.pad, s.pad},
        src_tag(s.x_blocked ? Tag::nChw16c : Tag::nchw),
        dst_tag(s.y_blocked ? Tag::nChw16c : Tag::nchw),
        algo(algorithm),
        weights_tag(s.groups > 1 ? Tag::goihw : Tag::oihw),
        read(s.precision == Precision::kBfloat16 ? Type::bf16 : Type::f32) {}
  // convoy's layouts of the three tensors: images plain or channel-blocked, filters plain.
  memory::desc User(Role role) const {
    return role == kSrc ? Desc(src, src_tag) : role == kWeights ? Desc(weights, weights_tag) : Desc(dst, dst_tag);
  }
};

// Every part runs on its own thread with its own scratchpad.
dnnl::primitive_attr Attr(bool relu) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  return attr;
}

dnnl::convolution_forward::primitive_desc ForwardDesc(const dnnl::engine& engine, const Dims& d, bool bias, bool relu) {
  const auto any = Tag::any;
  const auto kind = dnnl::prop_kind::forward_training;
  const auto algo = d.algo;
  const auto desc =
      bias ? dnnl::convolution_forward::desc(kind, algo, Desc(d.src, any, d.read), Desc(d.weights, any, d.read),
                                             Desc(d.bias, Tag::x), Desc(d.dst, any), d.strides, d.padding, d.padding)
           : dnnl::convolution_forward::desc(kind, algo, Desc(d.src, any, d.read), Desc(d.weights, any, d.read),
                                             Desc(d.dst, any), d.strides, d.padding, d.padding);
  return dnnl::convolution_forward::primitive_desc(desc, Attr(relu), engine);
}

dnnl::convolution_backward_data::primitive_desc BackwardDataDesc(
    const dnnl::engine& engine, const Dims& d, const dnnl::convolution_forward::primitive_desc& hint) {
  const auto any = Tag::any;
  const dnnl::convolution_backward_data::desc desc(d.algo, Desc(d.src, any), Desc(d.weights, any, d.read),
                                                   Desc(d.dst, any, d.read), d.strides, d.padding, d.padding);
  return dnnl::convolution_backward_data::primitive_desc(desc, Attr(false), engine, hint);
}

dnnl::convolution_backward_weights::primitive_desc BackwardWeightsDesc(
    const dnnl::engine& engine, const Dims& d, bool bias, const dnnl::convolution_forward::primitive_desc& hint) {
  const auto any = Tag::any;
  const auto algo = d.algo;
  const auto desc =
      bias ? dnnl::convolution_backward_weights::desc(algo, Desc(d.src, any, d.read), Desc(d.weights, any),
                                                      Desc(d.bias, Tag::x), Desc(d.dst, any, d.read), d.strides,
                                                      d.padding, d.padding)
           : dnnl::convolution_backward_weights::desc(algo, Desc(d.src, any, d.read), Desc(d.weights, any),
                                                      Desc(d.dst, any, d.read), d.strides, d.padding, d.padding);
  return dnnl::convolution_backward_weights::primitive_desc(desc, Attr(false), engine, hint);
}

// oneDNN's JIT kernels, not its reference loops or GEMM-based ones. In bf16 its AMX kernels for
// larger channel counts are "brgconv" (batch-reduce GEMM, also JIT); in fp32 those are left out,
// as the choices measured for fp32 were made without them.
bool IsJit(const char* impl, const Dims& d) {
  return std::strncmp(impl, "jit", 3) == 0 || (d.read == Type::bf16 && std::strncmp(impl, "brg", 3) == 0);
}

// Which passes have JIT kernels for this algorithm: all three, the forward and input-gradient
// passes alone (oneDNN 2.6 has grouped kernels for those on groups of 4 channels, and for their
// filter gradient only its GEMM-based one: 6.9 ms a 4-image part of ResNeXt-style's layer, two
// parts a step, against 3-4 ms a step for the CPU's own), or not those.
DnnlConvolution::Passes JitPasses(const dnnl::engine& e, const Dims& d) {
  try {
    const auto fwd = ForwardDesc(e, d, true, false);
    if (!IsJit(fwd.impl_info_str(), d) || !IsJit(BackwardDataDesc(e, d, fwd).impl_info_str(), d))
      return DnnlConvolution::Passes::kNone;
    return IsJit(BackwardWeightsDesc(e, d, true, fwd).impl_info_str(), d) ? DnnlConvolution::Passes::kAll
                                                                          : DnnlConvolution::Passes::kAllButFilters;
  } catch (const dnnl::error&) {
    return DnnlConvolution::Passes::kNone;
  }
}

// Winograd's F(4x4, 3x3) kernels beat the direct ones on 3x3 stride-1 layers of 32 to 128
// channels in and out (ResNet-20's stages 2 and 3: forward 2.4-2.6 -> 1.6-1.8 ms, backward
// 5.4-5.5 -> 3.9-4.0 ms per layer at batch 64, one thread; `convoy time`). They lose on 16-channel
// layers, where the transforms outweigh the saved multiplies, and on wider ones, where the
// transformed weights outgrow the caches (bench/layers_vs_pytorch.py, 256 channels at 7 x 7:
// 19.0 + 49.6 ms Winograd against 8.6 + 22.0 ms direct, forward + backward; whole steps at batch
// 16: configs/vgg_small_photos 227 -> 181 ms, resnet18_photos 1,985 -> 1,544 ms). They compute
// whole 4 x 4 tiles of output: where the tiles cover more than half again the output's area, the
// direct kernels won (9 x 9 outputs, 12 x 12 of tiles: ResNet-18's 128-channel stage at 64 px,
// batch 16, one thread, 8.0-8.8 -> 6.8-7.0 ms a layer forward + backward, `convoy time`), and at
// 17 x 17 (1.38 times the area; its 64-channel stage) Winograd still did (6.8 against 6.1 ms).
bool WinogradWins(const ConvShape& s) {
  const int64_t tiled = int64_t{(s.oh() + 3) / 4 * 4} * ((s.ow() + 3) / 4 * 4);
  return s.precision == Precision::kFloat32 && s.groups == 1 && s.kh == 3 && s.kw == 3 && s.stride == 1 && s.c >= 32 &&
         s.k >= 32 && s.c <= 128 && s.k <= 128 && 2 * tiled <= 3 * int64_t{s.oh()} * s.ow();
}

}  // namespace

// One pass (forward, backward data or backward weights) of one part shape in one slot, made once
// and reused every step: the primitive, views of convoy's tensors (their addresses set per call),
// blocked buffers where oneDNN's layout differs, the reorders between them, and the arguments.
struct DnnlConvolution::SharedFilters {
  dnnl::memory::desc layout;
  memory copy;
  std::mutex mutex;
  uint64_t call = 0;  // none yet: calls count from 1
};

struct DnnlConvolution::Pass {
  SharedFilters* filters = nullptr;  // where the filters this pass reads are reordered to, if they are
  dnnl::stream stream;
  dnnl::primitive primitive;
  memory user[3], bias;      // convoy's tensors, by Role
  memory used[3];            // what the primitive reads or writes: a blocked buffer or user[role]
  bool reordered[3] = {};    // whether oneDNN's layout differs from convoy's
  dnnl::reorder reorder[3];  // user -> blocked for what is read, blocked -> user for what is written
  std::unordered_map<int, memory> args;
};

DnnlConvolution::DnnlConvolution() : engine_(std::make_unique<Engine>()) {}
DnnlConvolution::~DnnlConvolution() = default;

bool DnnlConvolution::Supported(const ConvShape& s) { return Covered(s) == Passes::kAll; }

DnnlConvolution::Passes DnnlConvolution::Covered(const ConvShape& s) {
  std::lock_guard<std::mutex> lock(mutex_);
  return Choose(s).passes;
}

// kind -1 (no pass, no slot): the shape's algorithm, whatever its layouts.
DnnlConvolution::Key DnnlConvolution::KeyOf(const ConvShape& s, int kind, int slot, bool bias, bool relu) {
  const bool any = kind < 0;
  return {s.n,
          s.c,
          s.h,
          s.w,
          s.k,
          s.kh,
          s.kw,
          s.stride,
          s.pad,
          kind,
          slot,
          bias,
          relu,
          !any && s.x_blocked,
          !any && s.y_blocked,
          s.groups,
          static_cast<int>(s.precision)};
}

DnnlConvolution::Choice DnnlConvolution::Choose(const ConvShape& s) {
  const Key key = KeyOf(s, -1, -1, false, false);
  auto it = choices_.find(key);
  if (it != choices_.end()) return it->second;
  const auto& e = engine_->engine;
  Choice choice{dnnl::algorithm::convolution_direct, Passes::kNone};
  if (WinogradWins(s)) {
    choice = {dnnl::algorithm::convolution_winograd, JitPasses(e, Dims(s, dnnl::algorithm::convolution_winograd))};
    if (choice.passes != Passes::kAll) choice = {dnnl::algorithm::convolution_direct, Passes::kNone};
  }
  if (choice.passes == Passes::kNone) choice.passes = JitPasses(e, Dims(s, choice.algo));
  // Only grouped layers are taken without the filter gradient: their other engine is the layer
  // running one convolution per group, which costs more than the CPU's own grouped filter gradient.
  if (choice.passes == Passes::kAllButFilters && s.groups == 1) choice.passes = Passes::kNone;
  choices_[key] = choice;
  return choice;
}

DnnlConvolution::Pass& DnnlConvolution::Get(int kind, const ConvShape& s, int slot, bool bias, bool relu) {
  const Key key = KeyOf(s, kind, slot, bias, relu);
  std::lock_guard<std::mutex> lock(mutex_);
  auto& pass = passes_[key];
  if (pass) return *pass;
  const auto& e = engine_->engine;
  pass = std::make_unique<Pass>();
  Pass& p = *pass;
  p.stream = dnnl::stream(e);
  const Dims d(s, Choose(s).algo);
  const auto fwd = ForwardDesc(e, d, bias, relu);
  memory::desc layout[3], scratch;
  int args[3], bias_arg = DNNL_ARG_BIAS;
  if (kind == kForward) {
    layout[kSrc] = fwd.src_desc(), layout[kWeights] = fwd.weights_desc(), layout[kDst] = fwd.dst_desc();
    args[kSrc] = DNNL_ARG_SRC, args[kWeights] = DNNL_ARG_WEIGHTS, args[kDst] = DNNL_ARG_DST;
    scratch = fwd.scratchpad_desc();
    p.primitive = dnnl::convolution_forward(fwd);
  } else if (kind == kBackwardData) {
    const auto bd = BackwardDataDesc(e, d, fwd);
    layout[kSrc] = bd.diff_src_desc(), layout[kWeights] = bd.weights_desc(), layout[kDst] = bd.diff_dst_desc();
    args[kSrc] = DNNL_ARG_DIFF_SRC, args[kWeights] = DNNL_ARG_WEIGHTS, args[kDst] = DNNL_ARG_DIFF_DST;
    scratch = bd.scratchpad_desc();
    p.primitive = dnnl::convolution_backward_data(bd);
  } else {
    const auto bw = BackwardWeightsDesc(e, d, bias, fwd);
    layout[kSrc] = bw.src_desc(), layout[kWeights] = bw.diff_weights_desc(), layout[kDst] = bw.diff_dst_desc();
    args[kSrc] = DNNL_ARG_SRC, args[kWeights] = DNNL_ARG_DIFF_WEIGHTS, args[kDst] = DNNL_ARG_DIFF_DST;
    bias_arg = DNNL_ARG_DIFF_BIAS;
    scratch = bw.scratchpad_desc();
    p.primitive = dnnl::convolution_backward_weights(bw);
  }
  for (int role = 0; role < 3; ++role) {
    p.user[role] = memory(d.User(Role(role)), e, DNNL_MEMORY_NONE);
    p.reordered[role] = layout[role] != d.User(Role(role));
    if (role == kWeights && kind != kBackwardWeights && p.reordered[role]) p.filters = SharedFor(layout[role]);
    p.used[role] = p.filters && role == kWeights ? p.filters->copy
                   : p.reordered[role]           ? memory(layout[role], e)
                                                 : p.user[role];
    if (p.reordered[role])
      p.reorder[role] = role == kWritten[kind] ? dnnl::reorder(p.used[role], p.user[role])
                                               : dnnl::reorder(p.user[role], p.used[role]);
    p.args[args[role]] = p.used[role];
  }
  p.args[DNNL_ARG_SCRATCHPAD] = memory(scratch, e);
  if (bias) {
    p.bias = memory(Desc(d.bias, Tag::x), e, DNNL_MEMORY_NONE);
    p.args[bias_arg] = p.bias;
  }
  return p;
}

DnnlConvolution::SharedFilters* DnnlConvolution::SharedFor(const memory::desc& layout) {
  for (const auto& shared : shared_)
    if (shared->layout == layout) return shared.get();
  shared_.push_back(std::make_unique<SharedFilters>());
  SharedFilters& made = *shared_.back();
  made.layout = layout;
  made.copy = memory(layout, engine_->engine);
  return &made;
}

void DnnlConvolution::Run(int kind, const ConvShape& s, int slot, uint64_t call, const float* src, const float* weights,
                          const float* dst, const float* bias, bool relu) {
  omp_set_num_threads(1);  // this part runs on this thread; the pool gives the parallelism
  Pass& p = Get(kind, s, slot, bias != nullptr, relu);
  const float* data[3] = {src, weights, dst};
  const Role written = kWritten[kind];
  for (int role = 0; role < 3; ++role) {
    p.user[role].set_data_handle(const_cast<float*>(data[role]));
    if (!p.reordered[role] || role == written) continue;
    if (role == kWeights && p.filters) {  // the call's first part reorders them for all
      std::lock_guard<std::mutex> lock(p.filters->mutex);
      if (p.filters->call == call) continue;
      p.reorder[role].execute(p.stream, p.user[role], p.used[role]);
      p.stream.wait();
      p.filters->call = call;
      continue;
    }
    p.reorder[role].execute(p.stream, p.user[role], p.used[role]);
  }
  if (bias) p.bias.set_data_handle(const_cast<float*>(bias));
  p.primitive.execute(p.stream, p.args);
  if (p.reordered[written] && data[written]) p.reorder[written].execute(p.stream, p.used[written], p.user[written]);
  p.stream.wait();
}

bool DnnlConvolution::SumsFilterGradientsInItsLayout(const PartShapes& shapes, int parts, bool bias) {
  memory::desc first;
  for (int g = 0; g < parts; ++g) {
    const Pass& p = Get(kBackwardWeights, shapes[g], g, bias, false);
    if (!p.reordered[kWeights]) return false;
    if (g == 0) first = p.used[kWeights].get_desc();
    if (p.used[kWeights].get_desc() != first) return false;
  }
  return parts > 0;
}

void DnnlConvolution::SumFilterGradients(const PartShapes& shapes, int parts, bool bias, float* dw) {
  std::array<const float*, kSlots> partial{};
  for (int g = 0; g < parts; ++g)
    partial[g] =
        static_cast<const float*>(Get(kBackwardWeights, shapes[g], g, bias, false).used[kWeights].get_data_handle());
  Pass& first = Get(kBackwardWeights, shapes[0], 0, bias, false);
  float* sum = static_cast<float*>(first.used[kWeights].get_data_handle());
  const int64_t count = static_cast<int64_t>(first.used[kWeights].get_desc().get_size() / sizeof(float));
  // Element by element, the parts in order (padding included, where the layout has some).
  Parallel(count, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float total = 0.f;
      for (int g = 0; g < parts; ++g) total += partial[g][i];
      sum[i] = total;
    }
  });
  omp_set_num_threads(1);
  first.user[kWeights].set_data_handle(dw);
  first.reorder[kWeights].execute(first.stream, first.used[kWeights], first.user[kWeights]);
  first.stream.wait();
}

void DnnlConvolution::Forward(const ConvShape& s, int slot, uint64_t call, const float* x, const float* w,
                              const float* b, bool relu, float* y) {
  Run(kForward, s, slot, call, x, w, y, b, relu);
}

void DnnlConvolution::BackwardData(const ConvShape& s, int slot, uint64_t call, const float* dy, const float* w,
                                   float* dx) {
  Run(kBackwardData, s, slot, call, dx, w, dy, nullptr, false);
}

void DnnlConvolution::BackwardWeights(const ConvShape& s, int slot, const float* x, const float* dy, float* dw,
                                      float* db) {
  Run(kBackwardWeights, s, slot, 0, x, dw, dy, db, false);
}

}  // namespace convoy
