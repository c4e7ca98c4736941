#pragma once
// The reference the issue measures dropnet against: an MLP written directly with Eigen
// expressions, as a competent user would write it without a library. Same math as dropnet and
// torch (inverted dropout, BatchNorm with biased batch variance, softmax cross-entropy, Adam as in
// torch.optim), no dropnet code: masks come from std::mt19937, shuffling from std::shuffle.
//
// Layer l (hidden): z = W a + b; [BatchNorm: y = gamma * (z - mu) / sqrt(var + eps) + beta];
// h = max(y, 0); [dropout mask]. The last layer gives logits. dropout[l] is applied to the input
// of layer l (dropout[0] to the image itself).

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <new>
#include <random>
#include <vector>

namespace plain {

using Mat = Eigen::MatrixXf;
using Vec = Eigen::VectorXf;
using Labels = Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1>;
using ConstRef = Eigen::Ref<const Mat>;

struct AdamState {
  Mat m_W, v_W;
  Vec m_b, v_b, m_gamma, v_gamma, m_beta, v_beta;
};

struct Layer {
  Mat W, dW;
  Vec b, db;
  // BatchNorm (hidden layers when enabled)
  bool bn = false;
  Vec gamma, beta, dgamma, dbeta, running_mean, running_var, inv_std;
  // dropout on this layer's input
  float p = 0.f;
  Mat mask;       // 0 or 1/(1-p)
  Mat dropped;    // input * mask
  // caches
  Mat z, xhat, y, out;  // y = BatchNorm output; out = relu(...) for hidden layers, logits last
  Mat d;                // gradient scratch
  // this layer's input (the batch itself for the first layer: no copy)
  const float* in_data = nullptr;
  Eigen::Index in_rows = 0, in_cols = 0, in_stride = 0;
  Eigen::Map<const Mat, 0, Eigen::OuterStride<>> input() const {
    return {in_data, in_rows, in_cols, Eigen::OuterStride<>(in_stride)};
  }
  AdamState adam;
};

class MLP {
 public:
  MLP(const std::vector<long>& sizes, const std::vector<double>& dropout, bool batch_norm,
      unsigned seed)
      : rng_(seed) {
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
      Layer L;
      const long in = sizes[l], out = sizes[l + 1];
      // He-normal weights, zero bias.
      std::normal_distribution<float> normal(0.f, std::sqrt(2.f / float(in)));
      L.W = Mat::NullaryExpr(out, in, [&] { return normal(rng_); });
      L.b = Vec::Zero(out);
      L.bn = batch_norm && l + 2 < sizes.size();
      if (L.bn) {
        L.gamma = Vec::Ones(out);
        L.beta = Vec::Zero(out);
        L.running_mean = Vec::Zero(out);
        L.running_var = Vec::Ones(out);
        L.adam.m_gamma = L.adam.v_gamma = L.adam.m_beta = L.adam.v_beta = Vec::Zero(out);
      }
      L.p = l < dropout.size() ? float(dropout[l]) : 0.f;
      L.adam.m_W = L.adam.v_W = Mat::Zero(out, in);
      L.adam.m_b = L.adam.v_b = Vec::Zero(out);
      layers_.push_back(std::move(L));
    }
  }

  /// x: features x batch (any column block of a dataset; not copied).
  const Mat& forward(ConstRef x, bool train) {
    Eigen::Map<const Mat, 0, Eigen::OuterStride<>> a(x.data(), x.rows(), x.cols(),
                                                      Eigen::OuterStride<>(x.outerStride()));
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      Layer& L = layers_[l];
      const bool last = l + 1 == layers_.size();
      if (train && L.p > 0.f) {
        std::uniform_real_distribution<float> uniform(0.f, 1.f);
        const float scale = 1.f / (1.f - L.p);
        L.mask = Mat::NullaryExpr(a.rows(), a.cols(),
                                  [&] { return uniform(rng_) < L.p ? 0.f : scale; });
        L.dropped = a.cwiseProduct(L.mask);
        new (&a) decltype(a)(L.dropped.data(), L.dropped.rows(), L.dropped.cols(),
                             Eigen::OuterStride<>(L.dropped.rows()));
      }
      L.in_data = a.data();
      L.in_rows = a.rows();
      L.in_cols = a.cols();
      L.in_stride = a.outerStride();
      L.z.noalias() = L.W * a;
      L.z.colwise() += L.b;
      if (last) {
        L.out = L.z;
      } else if (L.bn) {
        if (train) {
          const float m = float(L.z.cols());
          const Vec mean = L.z.rowwise().mean();
          L.xhat = L.z.colwise() - mean;
          const Vec var = L.xhat.array().square().rowwise().sum() / m;
          L.inv_std = (var.array() + eps_).rsqrt();
          L.xhat = L.xhat.array().colwise() * L.inv_std.array();
          L.running_mean = 0.9f * L.running_mean + 0.1f * mean;
          L.running_var = 0.9f * L.running_var + 0.1f * var * (m / (m - 1.f));
        } else {
          L.inv_std = (L.running_var.array() + eps_).rsqrt();
          L.xhat = (L.z.colwise() - L.running_mean).array().colwise() * L.inv_std.array();
        }
        L.y = (L.xhat.array().colwise() * L.gamma.array()).colwise() + L.beta.array();
        L.out = L.y.cwiseMax(0.f);
      } else {
        L.out = L.z.cwiseMax(0.f);
      }
      new (&a) decltype(a)(L.out.data(), L.out.rows(), L.out.cols(),
                           Eigen::OuterStride<>(L.out.rows()));
    }
    return layers_.back().out;
  }

  /// Mean softmax cross-entropy of the last forward's logits; writes dloss/dlogits into grad_.
  float loss(const Eigen::Ref<const Labels>& y, bool with_grad, long* correct) {
    const Mat& logits = layers_.back().out;
    const long m = logits.cols();
    probs_ = (logits.rowwise() - logits.colwise().maxCoeff()).array().exp();
    probs_.array().rowwise() /= probs_.colwise().sum().array();
    float total = 0.f;
    for (long j = 0; j < m; ++j) {
      total -= std::log(probs_(y(j), j));
      Eigen::Index best;
      logits.col(j).maxCoeff(&best);
      *correct += best == y(j);
    }
    if (with_grad) {
      grad_ = probs_;
      for (long j = 0; j < m; ++j) grad_(y(j), j) -= 1.f;
      grad_ /= float(m);
    }
    return total / float(m);
  }

  void backward() {
    const Mat* d = &grad_;
    for (std::size_t l = layers_.size(); l-- > 0;) {
      Layer& L = layers_[l];
      const bool last = l + 1 == layers_.size();
      if (!last) {
        // d is the gradient of L.out (after the next layer's dropout was undone there).
        if (L.bn) {
          const float m = float(L.z.cols());
          L.d = (L.y.array() > 0.f).select(*d, 0.f);
          L.dbeta = L.d.rowwise().sum();
          L.dgamma = L.d.cwiseProduct(L.xhat).rowwise().sum();
          const Vec k = L.gamma.cwiseProduct(L.inv_std) / m;
          L.d = ((m * L.d.array() - L.xhat.array().colwise() * L.dgamma.array()).colwise() -
                 L.dbeta.array())
                    .colwise() *
                k.array();
        } else {
          L.d = (L.z.array() > 0.f).select(*d, 0.f);
        }
        d = &L.d;
      }
      L.dW.noalias() = *d * L.input().transpose();
      L.db = d->rowwise().sum();
      if (l > 0) {  // gradient of the layer below's output, through this layer's input dropout
        dinput_.noalias() = L.W.transpose() * *d;
        if (L.p > 0.f) dinput_.array() *= L.mask.array();
        d = &dinput_;
      }
    }
  }

  void adam_step(float lr) {
    ++t_;
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float step = lr / (1.f - std::pow(b1, float(t_)));
    const float bc2 = std::sqrt(1.f - std::pow(b2, float(t_)));
    auto update = [&](auto& p, const auto& g, auto& m, auto& v) {
      m = b1 * m + (1.f - b1) * g;
      v = b2 * v + (1.f - b2) * g.cwiseProduct(g);
      p.array() -= step * m.array() / (v.array().sqrt() / bc2 + eps);
    };
    for (Layer& L : layers_) {
      update(L.W, L.dW, L.adam.m_W, L.adam.v_W);
      update(L.b, L.db, L.adam.m_b, L.adam.v_b);
      if (L.bn) {
        update(L.gamma, L.dgamma, L.adam.m_gamma, L.adam.v_gamma);
        update(L.beta, L.dbeta, L.adam.m_beta, L.adam.v_beta);
      }
    }
  }

  struct EpochResult {
    double train_loss = 0, train_accuracy = 0, valid_loss = 0, valid_accuracy = 0;
  };

  /// One epoch: shuffled mini-batches with Adam, then a validation pass in batches of
  /// `eval_batch`.
  EpochResult epoch(const Mat& x, const Labels& y, const Mat& vx, const Labels& vy, long batch,
                    long eval_batch, float lr) {
    EpochResult r;
    const long n = x.cols();
    order_.resize(std::size_t(n));
    std::iota(order_.begin(), order_.end(), 0L);
    std::shuffle(order_.begin(), order_.end(), rng_);
    long correct = 0, batches = 0;
    for (long first = 0; first < n; first += batch, ++batches) {
      const long count = std::min(batch, n - first);
      xb_.resize(x.rows(), count);
      yb_.resize(count);
      for (long j = 0; j < count; ++j) {
        xb_.col(j) = x.col(order_[std::size_t(first + j)]);
        yb_(j) = y(order_[std::size_t(first + j)]);
      }
      forward(xb_, true);
      r.train_loss += loss(yb_, true, &correct);
      backward();
      adam_step(lr);
    }
    r.train_loss /= double(batches);
    r.train_accuracy = double(correct) / double(n);
    correct = 0;
    for (long first = 0; first < vx.cols(); first += eval_batch) {
      const long count = std::min(eval_batch, vx.cols() - first);
      forward(vx.middleCols(first, count), false);
      r.valid_loss += loss(vy.segment(first, count), false, &correct) * double(count);
    }
    r.valid_loss /= double(vx.cols());
    r.valid_accuracy = double(correct) / double(vx.cols());
    return r;
  }

 private:
  std::vector<Layer> layers_;
  std::mt19937 rng_;
  float eps_ = 1e-5f;
  long t_ = 0;
  Mat probs_, grad_, dinput_, xb_;
  Labels yb_;
  std::vector<long> order_;
};

}  // namespace plain
