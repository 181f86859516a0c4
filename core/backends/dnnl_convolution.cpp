#include "core/backends/dnnl_convolution.h"

#include <omp.h>

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

namespace convoy {

using dnnl::memory;
using Tag = memory::format_tag;

struct DnnlConvolution::Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
};

namespace {

enum Kind { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

memory::desc Desc(const memory::dims& dims, Tag tag) { return memory::desc(dims, memory::data_type::f32, tag); }

struct Dims {
  memory::dims src, weights, bias, dst, strides, padding;
  explicit Dims(const ConvShape& s)
      : src{s.n, s.c, s.h, s.w},
        weights{s.k, s.c, s.kh, s.kw},
        bias{s.k},
        dst{s.n, s.k, s.oh(), s.ow()},
        strides{s.stride, s.stride},
        padding{s.pad, s.pad} {}
};

dnnl::convolution_forward::primitive_desc ForwardDesc(const dnnl::engine& engine, const ConvShape& s, bool bias,
                                                      bool relu) {
  const Dims d(s);
  const auto any = Tag::any;
  const auto desc = bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                           dnnl::algorithm::convolution_direct, Desc(d.src, any),
                                                           Desc(d.weights, any), Desc(d.bias, Tag::x), Desc(d.dst, any),
                                                           d.strides, d.padding, d.padding)
                         : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                           dnnl::algorithm::convolution_direct, Desc(d.src, any),
                                                           Desc(d.weights, any), Desc(d.dst, any), d.strides,
                                                           d.padding, d.padding);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // each part its own scratchpad
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  return dnnl::convolution_forward::primitive_desc(desc, attr, engine);
}

bool IsJit(const char* impl) { return std::strncmp(impl, "jit", 3) == 0; }

}  // namespace

// One pass (forward, backward data or backward weights) of one part shape in one slot: the
// primitive, its blocked buffers and scratchpad, and the reorders in and out of N x C x H x W.
struct DnnlConvolution::Pass {
  dnnl::stream stream;
  dnnl::primitive primitive;
  memory::desc src_md, weights_md, dst_md;  // what the primitive takes, in its layouts
  memory src, weights, dst, scratchpad;     // blocked buffers (or none where the layout is plain)
  bool blocked_src = false, blocked_weights = false, blocked_dst = false;
  Dims dims;
  explicit Pass(const ConvShape& s) : dims(s) {}

  // Reorders between each buffer and the user's layout, made on first use: every buffer moves
  // one way only in a given pass.
  dnnl::reorder src_reorder, weights_reorder, dst_reorder;

  // The primitive's view of user data at ptr: the user memory itself when the layouts agree,
  // else `buffer` after reordering into it.
  memory In(const dnnl::engine& e, const memory::desc& user, bool blocked, memory& buffer, dnnl::reorder& reorder,
            const float* ptr) {
    memory mem(user, e, const_cast<float*>(ptr));
    if (!blocked) return mem;
    if (!reorder) reorder = dnnl::reorder(mem, buffer);
    reorder.execute(stream, mem, buffer);
    return buffer;
  }
  void Out(const dnnl::engine& e, const memory::desc& user, bool blocked, memory& buffer, dnnl::reorder& reorder,
           float* ptr) {
    if (!blocked) return;
    memory mem(user, e, ptr);
    if (!reorder) reorder = dnnl::reorder(buffer, mem);
    reorder.execute(stream, buffer, mem);
  }
};

DnnlConvolution::DnnlConvolution() : engine_(std::make_unique<Engine>()) {}
DnnlConvolution::~DnnlConvolution() = default;

bool DnnlConvolution::Supported(const ConvShape& s) {
  const Key key{s.n, s.c, s.h, s.w, s.k, s.kh, s.kw, s.stride, s.pad, 0, 0, false, false};
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = supported_.find(key);
  if (it != supported_.end()) return it->second;
  bool ok = false;
  try {
    const auto& e = engine_->engine;
    const auto fwd = ForwardDesc(e, s, true, false);
    const Dims d(s);
    const auto any = Tag::any;
    const dnnl::convolution_backward_data::primitive_desc bd(
        dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, Desc(d.src, any),
                                              Desc(d.weights, any), Desc(d.dst, any), d.strides, d.padding, d.padding),
        e, fwd);
    const dnnl::convolution_backward_weights::primitive_desc bw(
        dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, Desc(d.src, any),
                                                 Desc(d.weights, any), Desc(d.bias, Tag::x), Desc(d.dst, any),
                                                 d.strides, d.padding, d.padding),
        e, fwd);
    ok = IsJit(fwd.impl_info_str()) && IsJit(bd.impl_info_str()) && IsJit(bw.impl_info_str());
  } catch (const dnnl::error&) {
    ok = false;
  }
  supported_[key] = ok;
  return ok;
}

DnnlConvolution::Pass& DnnlConvolution::Get(int kind, const ConvShape& s, int slot, bool bias, bool relu) {
  const Key key{s.n, s.c, s.h, s.w, s.k, s.kh, s.kw, s.stride, s.pad, kind, slot, bias, relu};
  std::lock_guard<std::mutex> lock(mutex_);
  auto& pass = passes_[key];
  if (pass) return *pass;
  const auto& e = engine_->engine;
  pass = std::make_unique<Pass>(s);
  Pass& p = *pass;
  p.stream = dnnl::stream(e);
  const Dims& d = p.dims;
  const auto any = Tag::any;
  const auto fwd = ForwardDesc(e, s, bias, relu);
  memory::desc scratch;
  if (kind == kForward) {
    p.src_md = fwd.src_desc(), p.weights_md = fwd.weights_desc(), p.dst_md = fwd.dst_desc();
    scratch = fwd.scratchpad_desc();
    p.primitive = dnnl::convolution_forward(fwd);
  } else if (kind == kBackwardData) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::convolution_backward_data::primitive_desc bd(
        dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, Desc(d.src, any),
                                              Desc(d.weights, any), Desc(d.dst, any), d.strides, d.padding, d.padding),
        attr, e, fwd);
    p.src_md = bd.diff_src_desc(), p.weights_md = bd.weights_desc(), p.dst_md = bd.diff_dst_desc();
    scratch = bd.scratchpad_desc();
    p.primitive = dnnl::convolution_backward_data(bd);
  } else {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const auto desc =
        bias ? dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, Desc(d.src, any),
                                                        Desc(d.weights, any), Desc(d.bias, Tag::x), Desc(d.dst, any),
                                                        d.strides, d.padding, d.padding)
             : dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, Desc(d.src, any),
                                                        Desc(d.weights, any), Desc(d.dst, any), d.strides, d.padding,
                                                        d.padding);
    const dnnl::convolution_backward_weights::primitive_desc bw(desc, attr, e, fwd);
    p.src_md = bw.src_desc(), p.weights_md = bw.diff_weights_desc(), p.dst_md = bw.diff_dst_desc();
    scratch = bw.scratchpad_desc();
    p.primitive = dnnl::convolution_backward_weights(bw);
  }
  p.blocked_src = p.src_md != Desc(d.src, Tag::nchw);
  p.blocked_weights = p.weights_md != Desc(d.weights, Tag::oihw);
  p.blocked_dst = p.dst_md != Desc(d.dst, Tag::nchw);
  if (p.blocked_src) p.src = memory(p.src_md, e);
  if (p.blocked_weights) p.weights = memory(p.weights_md, e);
  if (p.blocked_dst) p.dst = memory(p.dst_md, e);
  p.scratchpad = memory(scratch, e);
  return p;
}

void DnnlConvolution::Forward(const ConvShape& s, int slot, const float* x, const float* w, const float* b, bool relu,
                              float* y) {
  omp_set_num_threads(1);  // this part runs on this thread; the pool gives the parallelism
  Pass& p = Get(kForward, s, slot, b != nullptr, relu);
  const auto& e = engine_->engine;
  const Dims& d = p.dims;
  memory src = p.In(e, Desc(d.src, Tag::nchw), p.blocked_src, p.src, p.src_reorder, x);
  memory weights = p.In(e, Desc(d.weights, Tag::oihw), p.blocked_weights, p.weights, p.weights_reorder, w);
  memory dst = p.blocked_dst ? p.dst : memory(Desc(d.dst, Tag::nchw), e, y);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst},
                                       {DNNL_ARG_SCRATCHPAD, p.scratchpad}};
  if (b) args[DNNL_ARG_BIAS] = memory(Desc(d.bias, Tag::x), e, const_cast<float*>(b));
  p.primitive.execute(p.stream, args);
  p.Out(e, Desc(d.dst, Tag::nchw), p.blocked_dst, p.dst, p.dst_reorder, y);
  p.stream.wait();
}

void DnnlConvolution::BackwardData(const ConvShape& s, int slot, const float* dy, const float* w, float* dx) {
  omp_set_num_threads(1);
  Pass& p = Get(kBackwardData, s, slot, false, false);
  const auto& e = engine_->engine;
  const Dims& d = p.dims;
  memory diff_dst = p.In(e, Desc(d.dst, Tag::nchw), p.blocked_dst, p.dst, p.dst_reorder, dy);
  memory weights = p.In(e, Desc(d.weights, Tag::oihw), p.blocked_weights, p.weights, p.weights_reorder, w);
  memory diff_src = p.blocked_src ? p.src : memory(Desc(d.src, Tag::nchw), e, dx);
  p.primitive.execute(p.stream, {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, weights},
                                 {DNNL_ARG_DIFF_SRC, diff_src}, {DNNL_ARG_SCRATCHPAD, p.scratchpad}});
  p.Out(e, Desc(d.src, Tag::nchw), p.blocked_src, p.src, p.src_reorder, dx);
  p.stream.wait();
}

void DnnlConvolution::BackwardWeights(const ConvShape& s, int slot, const float* x, const float* dy, float* dw,
                                      float* db) {
  omp_set_num_threads(1);
  Pass& p = Get(kBackwardWeights, s, slot, db != nullptr, false);
  const auto& e = engine_->engine;
  const Dims& d = p.dims;
  memory src = p.In(e, Desc(d.src, Tag::nchw), p.blocked_src, p.src, p.src_reorder, x);
  memory diff_dst = p.In(e, Desc(d.dst, Tag::nchw), p.blocked_dst, p.dst, p.dst_reorder, dy);
  memory diff_weights = p.blocked_weights ? p.weights : memory(Desc(d.weights, Tag::oihw), e, dw);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst},
                                       {DNNL_ARG_DIFF_WEIGHTS, diff_weights}, {DNNL_ARG_SCRATCHPAD, p.scratchpad}};
  if (db) args[DNNL_ARG_DIFF_BIAS] = memory(Desc(d.bias, Tag::x), e, db);
  p.primitive.execute(p.stream, args);
  p.Out(e, Desc(d.weights, Tag::oihw), p.blocked_weights, p.weights, p.weights_reorder, dw);
  p.stream.wait();
}

}  // namespace convoy
