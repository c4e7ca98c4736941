// Conv2D benchmarks: dropnet's im2col + GEMM convolution against a direct convolution, in the
// same binary and the same run, on the Fashion-MNIST cnn preset's shapes.
//
//   conv/forward/<shape>, conv/backward/<shape>
//       dropnet's Conv2D (per-sample im2col + GEMM) against a direct convolution: the seven
//       loops of the definition, ordered so the innermost runs along an output row (contiguous,
//       vectorized by the compiler for stride 1) over the range that reads inside the image.
//       Counters: direct_ns (the direct loops' time per call), ratio = dropnet / direct.
//   conv/forward_vs_batched_gemm/<shape>
//       the design choice behind Conv2D: one GEMM per sample (as Conv2D does) against one wide
//       GEMM over the whole batch's patches followed by the copy into the channel-major layout.
//       Counters: batched_ns, ratio = per-sample / batched.
//   cnn/train_step/threads:<n>
//       one training step (forward, softmax cross-entropy, backward, Adam) of the cnn preset
//       network at batch 64; libtorch's figure for the same step is bench/compare/torch_conv.cpp.
// Both sides of every pair are first checked to compute the same values; a mismatch fails the
// benchmark and the process exits non-zero (what CI's short run checks, at batch 4 with
// DROPNET_BENCH_SHORT=1). Threads: 1 (Eigen's) unless the name says otherwise; the direct loops
// are single-threaded.

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>

#include "bench_conv.hpp"

namespace {

using namespace bench;
using dropnet::Generator;
using dropnet::Mode;

// ---------------------------------------------------------------------------------------------
// The direct convolution

using Range = std::pair<Index, Index>;  ///< [first, second)

/// Outputs [first, last) of extent `out` whose tap `offset` lands in [0, in).
Range inside(const Shape& g, Index offset, Index in, Index out) {
  Index first = 0;
  while (first < out && first * g.s - g.p + offset < 0) ++first;
  Index last = first;
  while (last < out && last * g.s - g.p + offset < in) ++last;
  return {first, last};
}

/// Calls tap(c, ki, kj, rows, cols) for every tap of the kernel: input channel c, kernel row ki
/// and column kj, with the output rows and columns [first, last) that read inside the image.
template <class Tap>
void for_each_tap(const Shape& g, Tap&& tap) {
  for (Index c = 0; c < g.c; ++c)
    for (Index ki = 0; ki < g.k; ++ki) {
      const auto rows = inside(g, ki, g.h, g.out_h());
      for (Index kj = 0; kj < g.k; ++kj) tap(c, ki, kj, rows, inside(g, kj, g.w, g.out_w()));
    }
}

/// y[o, oh, ow] = b[o] + sum_{c, ki, kj} W[o, (c k + ki) k + kj] x[c, oh s - p + ki, ow s - p + kj]
void direct_forward(const Shape& g, const Mat& weight, const Vec& bias, const Mat& x, Mat& y) {
  const Index ow_count = g.out_w(), spatial = g.out_spatial();
  y.resize(g.o * spatial, x.cols());
  for (Index n = 0; n < x.cols(); ++n)
    for (Index o = 0; o < g.o; ++o) {
      float* out = y.col(n).data() + o * spatial;
      std::fill(out, out + spatial, bias(o));
      for_each_tap(g, [&](Index c, Index ki, Index kj, Range rows, Range cols) {
        const float wv = weight(o, (c * g.k + ki) * g.k + kj);
        for (Index oh = rows.first; oh < rows.second; ++oh) {
          const float* row = x.col(n).data() + c * g.h * g.w + (oh * g.s - g.p + ki) * g.w;
          float* dst = out + oh * ow_count;
          for (Index ow = cols.first; ow < cols.second; ++ow)
            dst[ow] += wv * row[ow * g.s - g.p + kj];
        }
      });
    }
}

/// dW[o, (c,ki,kj)] = sum dy[o, oh, ow] x[c, ...],  db[o] = sum dy[o, ...],
/// dx[c, ...] = sum W[o, (c,ki,kj)] dy[o, oh, ow].
void direct_backward(const Shape& g, const Mat& weight, const Mat& x, const Mat& dy, Mat& dw,
                     Vec& db, Mat& dx) {
  const Index ow_count = g.out_w(), spatial = g.out_spatial();
  dw.setZero(weight.rows(), weight.cols());
  db.setZero(g.o);
  dx.setZero(x.rows(), x.cols());
  for (Index n = 0; n < x.cols(); ++n)
    for (Index o = 0; o < g.o; ++o) {
      const float* grad = dy.col(n).data() + o * spatial;
      db(o) += std::accumulate(grad, grad + spatial, 0.f);
      for_each_tap(g, [&](Index c, Index ki, Index kj, Range rows, Range cols) {
        const float wv = weight(o, (c * g.k + ki) * g.k + kj);
        float acc = 0.f;
        for (Index oh = rows.first; oh < rows.second; ++oh) {
          const Index offset = c * g.h * g.w + (oh * g.s - g.p + ki) * g.w - g.p + kj;
          const float* row = x.col(n).data() + offset;
          float* drow = dx.col(n).data() + offset;
          const float* src = grad + oh * ow_count;
          for (Index ow = cols.first; ow < cols.second; ++ow) {
            acc += src[ow] * row[ow * g.s];
            drow[ow * g.s] += wv * src[ow];
          }
        }
        dw(o, (c * g.k + ki) * g.k + kj) += acc;
      });
    }
}

// ---------------------------------------------------------------------------------------------
// Conv2D against the direct loops

void conv_pair(benchmark::State& state, const Shape& g, bool backward) {
  Eigen::setNbThreads(1);
  Generator gen(1);
  dropnet::Conv2D<float> conv(g.input(), g.o, g.k, gen,
                              dropnet::ConvOptions().stride(g.s).padding(g.p));
  conv.bias() = random_matrix(g.o, 1, 9);
  const Mat weight = conv.weight();
  const Vec bias = conv.bias();
  const Mat x = random_matrix(g.input().size(), g.batch, 2);
  const Mat dy = random_matrix(g.o * g.out_spatial(), g.batch, 3);
  Mat y, dw, dx;
  Vec db;
  direct_forward(g, weight, bias, x, y);
  if (!same(state, conv.forward(x, Mode::train, nullptr), y, "forward")) return;
  if (!backward) {
    paired(
        state, "direct",
        [&] { benchmark::DoNotOptimize(conv.forward(x, Mode::train, nullptr).data()); },
        [&] {
          direct_forward(g, weight, bias, x, y);
          benchmark::DoNotOptimize(y.data());
        },
        Work::flops(2 * g.macs()));
    return;
  }
  direct_backward(g, weight, x, dy, dw, db, dx);
  if (!same(state, conv.backward(dy, true), dx, "dx") ||
      !same(state, conv.weight_grad(), dw, "dW") || !same(state, conv.bias_grad(), db, "db"))
    return;
  paired(
      state, "direct", [&] { benchmark::DoNotOptimize(conv.backward(dy, true).data()); },
      [&] {
        direct_backward(g, weight, x, dy, dw, db, dx);
        benchmark::DoNotOptimize(dx.data());
      },
      Work::flops(4 * g.macs()));
}

// ---------------------------------------------------------------------------------------------
// Per-sample GEMMs (Conv2D) against one wide GEMM over the batch

/// The alternative formulation: the patches of every sample stacked into one (batch*OH*OW) x
/// C*k*k matrix, one GEMM against W^T, then each sample's OH*OW x O block copied out (the
/// stacked result interleaves samples, so it is not yet the channel-major batch).
struct BatchedConv {
  Shape g;
  Mat weight;
  Vec bias;
  Mat cols, z;

  void forward(const Mat& x, Mat& y) {
    const Index spatial = g.out_spatial(), ow_count = g.out_w();
    // Zeroed once, like Conv2D's buffer: the padding taps are never written.
    if (cols.rows() != spatial * x.cols()) cols.setZero(spatial * x.cols(), g.c * g.k * g.k);
    for (Index n = 0; n < x.cols(); ++n)
      for_each_tap(g, [&](Index c, Index ki, Index kj, Range rows, Range out_cols) {
        float* column = cols.col((c * g.k + ki) * g.k + kj).data() + n * spatial;
        for (Index oh = rows.first; oh < rows.second; ++oh) {
          const float* row = x.col(n).data() + c * g.h * g.w + (oh * g.s - g.p + ki) * g.w;
          for (Index ow = out_cols.first; ow < out_cols.second; ++ow)
            column[oh * ow_count + ow] = row[ow * g.s - g.p + kj];
        }
      });
    z.noalias() = cols * weight.transpose();
    y.resize(g.o * spatial, x.cols());
    for (Index n = 0; n < x.cols(); ++n) {
      Eigen::Map<Mat> out(y.col(n).data(), spatial, g.o);
      out = z.middleRows(n * spatial, spatial);
      out.rowwise() += bias.transpose();
    }
  }
};

void formulation_pair(benchmark::State& state, const Shape& g) {
  Eigen::setNbThreads(1);
  Generator gen(1);
  dropnet::Conv2D<float> conv(g.input(), g.o, g.k, gen,
                              dropnet::ConvOptions().stride(g.s).padding(g.p));
  BatchedConv batched{g, conv.weight(), conv.bias(), {}, {}};
  const Mat x = random_matrix(g.input().size(), g.batch, 2);
  Mat y;
  batched.forward(x, y);
  if (!same(state, conv.forward(x, Mode::train, nullptr), y, "batched forward")) return;
  paired(
      state, "batched",
      [&] { benchmark::DoNotOptimize(conv.forward(x, Mode::train, nullptr).data()); },
      [&] {
        batched.forward(x, y);
        benchmark::DoNotOptimize(y.data());
      },
      Work::flops(2 * g.macs()));
}

// ---------------------------------------------------------------------------------------------
// The cnn preset's training step

void cnn_train_step(benchmark::State& state) {
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  Generator gen(1);
  dropnet::Sequential<float> model = cnn_preset(gen);
  dropnet::Adam<float> adam(model.parameters(), dropnet::AdamOptions(1e-3));
  const dropnet::SoftmaxCrossEntropy<float> loss;
  const Mat x = random_matrix(784, 64, 4);
  dropnet::Labels y(64);
  for (Index i = 0; i < 64; ++i) y(i) = static_cast<int>(i % 10);
  Mat grad;
  auto step = [&] {
    const Mat& out = model.forward(x, Mode::train, gen);
    loss.compute(out, y, &grad);
    model.backward(grad);
    adam.step();
  };
  step();
  for (auto _ : state) step();
  state.counters["images_per_s"] =
      benchmark::Counter(64.0 * double(state.iterations()), benchmark::Counter::kIsRate);
  Eigen::setNbThreads(1);
}

// ---------------------------------------------------------------------------------------------

void register_all() {
  for (Shape g : shapes) {
    if (short_mode()) g.batch = 4;  // CI: enough to check the pairs agree
    const std::string suffix = g.label();
    benchmark::RegisterBenchmark(("conv/forward/" + suffix).c_str(), [g](benchmark::State& s) {
      conv_pair(s, g, false);
    })->UseManualTime();
    benchmark::RegisterBenchmark(("conv/backward/" + suffix).c_str(), [g](benchmark::State& s) {
      conv_pair(s, g, true);
    })->UseManualTime();
    benchmark::RegisterBenchmark(("conv/forward_vs_batched_gemm/" + suffix).c_str(),
                                 [g](benchmark::State& s) { formulation_pair(s, g); })
        ->UseManualTime();
  }
  auto* step = benchmark::RegisterBenchmark("cnn/train_step/batch:64", cnn_train_step)
                   ->ArgName("threads")
                   ->Arg(1)
                   ->Unit(benchmark::kMillisecond);
  if (!short_mode()) step->Arg(2);
}

}  // namespace

int main(int argc, char** argv) { return bench::run(argc, argv, register_all); }
