#pragma once
// RecurrentLayer<T, Cell>: what LSTM and GRU share -- the sequence layout, the weights in
// PyTorch's layout, variational dropout, Zoneout, backpropagation through time -- written once.
// lstm.hpp and gru.hpp name the two cells.
//
// Shapes (SequenceShape{T, F} input, H units, G gates: 4 for the LSTM, 3 for the GRU):
//   x: T*F x batch (step t at rows [t*F, (t+1)*F)); output: H x batch (the last h), or T*H x
//   batch with return_sequences (the same time-major layout, so recurrent layers stack).
//   weight_ih: G*H x F, weight_hh: G*H x H, bias_ih, bias_hh: G*H, gate k in rows [k*H, (k+1)*H)
//   (PyTorch's nn.LSTM / nn.GRU tensors of one layer, same order and layout).
// The cells (pre-activations a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, split by gate):
//   LSTM (gates i, f, g, o): i = s(a_i), f = s(a_f), g = tanh(a_g), o = s(a_o),
//        c~ = f c_{t-1} + i g,   h~ = o tanh(c~)
//   GRU (gates r, z, n; PyTorch's reset placement, inside the hidden product):
//        r = s(a_r), z = s(a_z), n = tanh(W_in x_t + b_in + r (W_hn h_{t-1} + b_hn)),
//        h~ = (1 - z) n + z h_{t-1}
// Zoneout (Krueger et al. 2016), rates p_c, p_h: s_t = s_{t-1} + d_t (s~_t - s_{t-1}) for s = c, h,
//   d_t ~ Bernoulli(1 - p) drawn fresh per step, sample and unit in train and mc_sample modes;
//   d_t = 1 - p (the expectation) in eval mode. Without Zoneout s_t = s~_t. The GRU has no c.
// Dropout (Keras' `dropout` and `recurrent_dropout`, variational, Gal and Ghahramani 2016): x_t
//   and h_{t-1} are multiplied by masks m / (1 - p), m ~ Bernoulli(1 - p), drawn once per
//   sequence (per sample and unit) and reused at every step; one mask per gate by default, one
//   shared by all gates with tied_masks(). The input of a gate's product is masked, nothing else
//   (the GRU's z h_{t-1} term and the LSTM's cell state are never masked). Train and mc_sample
//   modes only; eval mode is the plain cell. MaskMode::per_step draws fresh masks at every step
//   instead ("naive" dropout, for comparison with the variational form; not Keras').
// Backward is BPTT over the whole sequence; the gradients are those of the formulas above, with
// the masks of the last forward.
//
// Implementation: the input projection of all steps is one GEMM (one per gate with untied
// input masks) over the time-major copy of x; the recurrent product is one GEMM per step (per
// gate with untied recurrent masks); each step's gates are computed in one fused pass. The
// dropout masks are multiplied into x_t and h_{t-1} inside those GEMMs, while they pack their
// right operand (Gemm::multiply_scaled), and again inside the weight-gradient GEMMs: no masked
// copy is ever written, so dropout costs a multiply per packed value, not a pass over memory.
// Every buffer is sized at the first forward of a (steps, batch) and reused, so a training step
// allocates nothing after that. Weight gradients are two GEMMs over all steps after the loop.
//
// Throws InvalidArgument naming the layer: non-positive steps, features or units, rates outside
// [0, 1), Zoneout of c for a GRU (construction); an input whose rows are not T*F, an empty batch,
// a missing Generator when the layer samples (forward); backward before forward or a gradient of
// the wrong shape.

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "../core/gemm.hpp"
#include "bernoulli_mask.hpp"
#include "initializers.hpp"
#include "layer.hpp"
#include "layer_config.hpp"
#include "parameter_ref.hpp"
#include "sequence_shape.hpp"

namespace dropnet {

/// The recurrent cells dropnet has.
enum class CellKind {
  lstm,  ///< gates i, f, g, o and a cell state c
  gru    ///< gates r, z, n, no cell state
};

/// How often the dropout masks of a recurrent layer are drawn.
enum class MaskMode {
  per_sequence,  ///< once per sequence, reused at every step (variational; Keras; the default)
  per_step       ///< fresh at every step ("naive" dropout, for comparison)
};

/// "per_sequence" or "per_step".
inline const char* to_string(MaskMode m) {
  return m == MaskMode::per_step ? "per_step" : "per_sequence";
}

/// LSTM and GRU options besides the shapes:
/// RecurrentOptions().return_sequences(true).dropout(0.2).recurrent_dropout(0.2).zoneout(0.1, 0.05).
class RecurrentOptions {
 public:
  /// Output every step's h (T*H x batch) instead of the last one (default off).
  RecurrentOptions& return_sequences(bool on) {
    return_sequences_ = on;
    return *this;
  }
  /// Drop rate of the input x_t, mask drawn once per sequence (default 0).
  RecurrentOptions& dropout(double p) {
    dropout_ = p;
    return *this;
  }
  /// Drop rate of h_{t-1} in the recurrent product, mask drawn once per sequence (default 0).
  RecurrentOptions& recurrent_dropout(double p) {
    recurrent_dropout_ = p;
    return *this;
  }
  /// One mask shared by all gates instead of one per gate (default off, as in Keras).
  RecurrentOptions& tied_masks(bool on) {
    tied_masks_ = on;
    return *this;
  }
  /// When the dropout and recurrent_dropout masks are drawn (default per_sequence).
  RecurrentOptions& mask_mode(MaskMode m) {
    mask_mode_ = m;
    return *this;
  }
  /// Zoneout rates of the cell state c (LSTM only) and of h (default 0, 0).
  RecurrentOptions& zoneout(double cell, double hidden) {
    zoneout_c_ = cell;
    zoneout_h_ = hidden;
    return *this;
  }
  /// Initializer of weight_ih (default Xavier uniform, Keras' glorot_uniform).
  RecurrentOptions& init(Init i) {
    init_ = i;
    return *this;
  }
  /// weight_hh orthogonal per gate (default, Keras' recurrent_initializer) or drawn by init().
  RecurrentOptions& orthogonal_recurrent(bool on) {
    orthogonal_ = on;
    return *this;
  }
  /// LSTM: forget-gate bias 1 at initialization (default on, Keras' unit_forget_bias).
  RecurrentOptions& forget_bias(bool on) {
    forget_bias_ = on;
    return *this;
  }

  /// See return_sequences(bool).
  bool return_sequences() const { return return_sequences_; }
  /// See dropout(double).
  double dropout() const { return dropout_; }
  /// See recurrent_dropout(double).
  double recurrent_dropout() const { return recurrent_dropout_; }
  /// See tied_masks(bool).
  bool tied_masks() const { return tied_masks_; }
  /// See mask_mode(MaskMode).
  MaskMode mask_mode() const { return mask_mode_; }
  /// Zoneout rate of c.
  double zoneout_c() const { return zoneout_c_; }
  /// Zoneout rate of h.
  double zoneout_h() const { return zoneout_h_; }
  /// See init(Init).
  Init init() const { return init_; }
  /// See orthogonal_recurrent(bool).
  bool orthogonal_recurrent() const { return orthogonal_; }
  /// See forget_bias(bool).
  bool forget_bias() const { return forget_bias_; }

 private:
  bool return_sequences_ = false;
  double dropout_ = 0.0, recurrent_dropout_ = 0.0;
  bool tied_masks_ = false;
  MaskMode mask_mode_ = MaskMode::per_sequence;
  double zoneout_c_ = 0.0, zoneout_h_ = 0.0;
  Init init_ = Init::xavier_uniform;
  bool orthogonal_ = true;
  bool forget_bias_ = true;
};

/// Fills `w` (rows a multiple of its columns n) with orthogonal n x n blocks: modified
/// Gram-Schmidt on standard normal draws from `gen` (Keras' Orthogonal per gate, gain 1).
template <class T>
void initialize_orthogonal_blocks(Matrix<T>& w, Generator& gen) {
  const Index n = w.cols();
  Matrix<double> q(n, n);
  for (Index block = 0; block + n <= w.rows(); block += n) {
    for (Index i = 0; i < q.size(); ++i) q.data()[i] = gen.normal<double>();
    for (Index j = 0; j < n; ++j) {
      for (Index k = 0; k < j; ++k) q.col(j) -= q.col(k).dot(q.col(j)) * q.col(k);
      q.col(j).normalize();
    }
    w.middleRows(block, n) = q.cast<T>();
  }
}

/// The LSTM or GRU layer of the file comment; LSTM<T> and GRU<T> name the two.
template <class T, CellKind Cell>
class RecurrentLayer : public Layer<T> {
 public:
  /// Gates per unit: 4 (i, f, g, o) for the LSTM, 3 (r, z, n) for the GRU.
  static constexpr Index gates = Cell == CellKind::lstm ? 4 : 3;
  /// "LSTM" or "GRU".
  static constexpr const char* cell_kind = Cell == CellKind::lstm ? "LSTM" : "GRU";

  /// A layer of `units` cells over sequences of `input`, weights drawn from `gen` (see
  /// RecurrentOptions for the defaults). Throws InvalidArgument naming the layer (file comment).
  RecurrentLayer(const SequenceShape& input, Index units, Generator& gen,
                 const RecurrentOptions& options = {})
      : input_(input),
        units_(units),
        options_(options),
        keep_x_(std::string(cell_kind) + " dropout", options.dropout()),
        keep_h_(std::string(cell_kind) + " recurrent_dropout", options.recurrent_dropout()),
        keep_zc_(std::string(cell_kind) + " zoneout of c", options.zoneout_c()),
        keep_zh_(std::string(cell_kind) + " zoneout of h", options.zoneout_h()) {
    detail::require_sequence_shape(cell_kind, input);
    detail::require(units > 0, cell_kind, "units must be > 0, got ", units);
    detail::require(Cell == CellKind::lstm || options.zoneout_c() == 0.0, cell_kind,
                    "a GRU has no cell state: zoneout of c must be 0, got ", options.zoneout_c());
    const Index rows = gates * units;
    weight_ih_.resize(rows, input.features);
    weight_hh_.resize(rows, units);
    weight_ih_grad_ = Matrix<T>::Zero(rows, input.features);
    weight_hh_grad_ = Matrix<T>::Zero(rows, units);
    bias_ih_ = bias_hh_ = bias_ih_grad_ = bias_hh_grad_ = Vector<T>::Zero(rows);
    initialize(weight_ih_, options.init(), gen);
    if (options.orthogonal_recurrent()) {
      initialize_orthogonal_blocks(weight_hh_, gen);
    } else {
      initialize(weight_hh_, options.init(), gen);
    }
    if (Cell == CellKind::lstm && options.forget_bias()) bias_ih_.segment(units, units).setOnes();
  }

  /// Elements the constructor allocates: the four tensors and their gradients.
  static std::uint64_t construction_elements(const SequenceShape& input, Index units) {
    const auto rows = static_cast<std::uint64_t>(gates * units);
    return 2 * rows * (static_cast<std::uint64_t>(input.features + units) + 2);
  }

  /// The layer `c` describes (fields: see config()); charges construction_elements to `budget`.
  /// Throws FormatError.
  static LayerPtr<T> from_config(const LayerConfig& c, ElementBudget& budget) {
    const SequenceShape input{c.integer("steps", 1, detail::max_layer_size),
                              c.integer("features", 1, detail::max_layer_size)};
    const Index units = c.integer("units", 1, detail::max_layer_size);
    detail::checked_product(c, {input.steps, input.features});
    detail::checked_product(c, {2 * gates, units, input.features + units + 2});
    RecurrentOptions options;
    options.return_sequences(c.flag("return_sequences"))
        .dropout(c.finite("dropout"))
        .recurrent_dropout(c.finite("recurrent_dropout"))
        .tied_masks(c.flag("tied_masks"))
        .mask_mode(mask_mode_of(c))
        .zoneout(c.finite("zoneout_c"), c.finite("zoneout_h"))
        .orthogonal_recurrent(c.flag("orthogonal_recurrent"))
        .forget_bias(c.flag("forget_bias"))
        .init(init_from_string(c.string("init")));
    detail::take(budget, construction_elements(input, units), c);
    Generator unused(0);
    return std::make_unique<RecurrentLayer>(input, units, unused, options);
  }

  /// e.g. "LSTM(28x28->128, seq, dropout=0.2, recurrent_dropout=0.2, zoneout=0.1/0.05)".
  std::string name() const override {
    std::string s = detail::concat(cell_kind, "(", to_string(input_), "->", units_);
    if (options_.return_sequences()) s += ", seq";
    if (options_.dropout() > 0) s += detail::concat(", dropout=", options_.dropout());
    if (options_.recurrent_dropout() > 0)
      s += detail::concat(", recurrent_dropout=", options_.recurrent_dropout());
    if (options_.tied_masks()) s += ", tied";
    if (per_step_masks()) s += ", per-step masks";
    if (zoneout()) s += detail::concat(", zoneout=", options_.zoneout_c(), "/", options_.zoneout_h());
    return s + ")";
  }
  /// "LSTM" or "GRU".
  std::string kind() const override { return cell_kind; }

  /// T x F of the input.
  const SequenceShape& input_shape() const { return input_; }
  /// H.
  Index units() const { return units_; }
  /// The options the layer was built with.
  const RecurrentOptions& options() const { return options_; }

  /// T*F.
  Index expected_input_rows() const override { return input_.size(); }
  /// H, or T*H with return_sequences; throws InvalidArgument naming the layer unless T*F rows.
  Index output_rows(Index input_rows) const override {
    detail::require_sequence_rows(name(), input_, input_rows);
    return options_.return_sequences() ? input_.steps * units_ : units_;
  }
  /// True when a dropout or Zoneout rate is positive.
  bool is_stochastic() const override {
    return options_.dropout() > 0 || options_.recurrent_dropout() > 0 || zoneout();
  }

  /// weight_ih (G*H x F), read and written in place.
  ParameterRef<T, Matrix<T>> weight_ih() { return {weight_ih_, *this, "weight_ih"}; }
  /// weight_hh (G*H x H), read and written in place.
  ParameterRef<T, Matrix<T>> weight_hh() { return {weight_hh_, *this, "weight_hh"}; }
  /// bias_ih (G*H), read and written in place.
  ParameterRef<T, Vector<T>> bias_ih() { return {bias_ih_, *this, "bias_ih"}; }
  /// bias_hh (G*H), read and written in place.
  ParameterRef<T, Vector<T>> bias_hh() { return {bias_hh_, *this, "bias_hh"}; }
  /// Gradient of weight_ih from the last backward.
  const Matrix<T>& weight_ih_grad() const { return weight_ih_grad_; }
  /// Gradient of weight_hh from the last backward.
  const Matrix<T>& weight_hh_grad() const { return weight_hh_grad_; }

  /// The recurrent masks of the last forward (values 0 and 1/(1-p)), masks*H x batch, per sample
  /// (per_step: masks*H x T*batch, time-major), gate k's in rows [k*H, (k+1)*H) unless tied;
  /// empty unless it applied recurrent dropout.
  const Matrix<T>& recurrent_mask() const { return mask_h_; }
  /// The input masks of the last forward (values 0 and 1/(1-p)), masks*F x batch, per sample
  /// (per_step: masks*F x T*batch, time-major); empty unless it applied input dropout.
  const Matrix<T>& input_mask() const { return mask_x_; }

  /// weight_ih, weight_hh, bias_ih, bias_hh (PyTorch's names and order).
  ParameterList<T> parameters() override {
    return {view_of<T>("weight_ih", weight_ih_, &weight_ih_grad_, ParameterRole::weight),
            view_of<T>("weight_hh", weight_hh_, &weight_hh_grad_, ParameterRole::weight),
            view_of<T>("bias_ih", bias_ih_, &bias_ih_grad_, ParameterRole::bias),
            view_of<T>("bias_hh", bias_hh_, &bias_hh_grad_, ParameterRole::bias)};
  }

  /// The output (file comment). Throws InvalidArgument naming the layer for a bad input.
  const Matrix<T>& forward(const Matrix<T>& x, Mode mode, Generator* gen) override {
    if (x.rows() != input_.size()) detail::require_sequence_rows(name(), input_, x.rows());
    this->require_nonempty(x);
    const bool sample = dropnet::is_stochastic(mode) && is_stochastic();
    if (sample) this->require_generator(mode, gen);
    batch_ = x.cols();
    input_masks_ = sample && options_.dropout() > 0 ? mask_count() : 0;
    recurrent_masks_ = sample && options_.recurrent_dropout() > 0 ? mask_count() : 0;
    resize_buffers();
    if (sample) {  // gen is non-null here (require_generator)
      if (input_masks_ > 0)
        draw_mask(*gen, options_.dropout(), keep_x_, input_masks_ * input_.features, mask_x_);
      if (recurrent_masks_ > 0)
        draw_mask(*gen, options_.recurrent_dropout(), keep_h_, recurrent_masks_ * units_, mask_h_);
    }
    if (input_masks_ == 0) mask_x_.resize(0, 0);
    if (recurrent_masks_ == 0) mask_h_.resize(0, 0);
    draw_zoneout(sample ? gen : nullptr, options_.zoneout_c(), keep_zc_, zc_);
    draw_zoneout(sample ? gen : nullptr, options_.zoneout_h(), keep_zh_, zh_);
    project_inputs(x);
    hs_.leftCols(batch_).setZero();
    if constexpr (Cell == CellKind::lstm) cs_.leftCols(batch_).setZero();
    for (Index t = 0; t < input_.steps; ++t) {
      project_hidden(t);
      step_forward(t);
    }
    write_output();
    forwarded_ = true;
    return output_;
  }

  /// BPTT: writes the four gradients; returns dx (T*F x batch), or an empty matrix when need_dx
  /// is false. Throws InvalidArgument before a forward or for a dy of the wrong shape.
  const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) override {
    if (!forwarded_) throw InvalidArgument(name() + ": backward called before forward");
    this->require_backward_shape(dy, output_);
    const Index b = batch_, h = units_;
    dh_.setZero();
    dc_.setZero();
    for (Index t = input_.steps - 1; t >= 0; --t) {
      if (options_.return_sequences()) {
        for (Index n = 0; n < b; ++n) dh_.col(n) += dy.col(n).segment(t * h, h);
      } else if (t == input_.steps - 1) {
        dh_ += dy;
      }
      step_backward(t);
      backpropagate_hidden(t);
    }
    parameter_gradients();
    if (need_dx) {
      input_gradient();
    } else {
      dx_.resize(0, 0);
    }
    return dx_;
  }

  /// Kind "LSTM" or "GRU": steps, features, units, return_sequences, dropout, recurrent_dropout,
  /// tied_masks, zoneout_c, zoneout_h, orthogonal_recurrent, forget_bias; string init, and
  /// string mask_mode only when per_step (so files of the default layer are unchanged).
  LayerConfig config() const override {
    LayerConfig c{cell_kind,
            {{"steps", double(input_.steps)},
             {"features", double(input_.features)},
             {"units", double(units_)},
             {"return_sequences", options_.return_sequences() ? 1.0 : 0.0},
             {"dropout", options_.dropout()},
             {"recurrent_dropout", options_.recurrent_dropout()},
             {"tied_masks", options_.tied_masks() ? 1.0 : 0.0},
             {"zoneout_c", options_.zoneout_c()},
             {"zoneout_h", options_.zoneout_h()},
             {"orthogonal_recurrent", options_.orthogonal_recurrent() ? 1.0 : 0.0},
             {"forget_bias", options_.forget_bias() ? 1.0 : 0.0}},
            {{"init", to_string(options_.init())}}};
    if (per_step_masks()) c.strings.emplace_back("mask_mode", to_string(options_.mask_mode()));
    return c;
  }

 private:
  /// The optional string mask_mode (absent: per_sequence, as in files from before the option).
  /// Throws FormatError for another value.
  static MaskMode mask_mode_of(const LayerConfig& c) {
    for (const auto& [key, value] : c.strings) {
      if (key != "mask_mode") continue;
      if (value == to_string(MaskMode::per_step)) return MaskMode::per_step;
      if (value == to_string(MaskMode::per_sequence)) return MaskMode::per_sequence;
      throw FormatError("layer config " + c.kind +
                        ": mask_mode must be per_sequence or per_step, got '" + value + "'");
    }
    return MaskMode::per_sequence;
  }

  bool zoneout() const { return options_.zoneout_c() > 0 || options_.zoneout_h() > 0; }
  bool per_step_masks() const { return options_.mask_mode() == MaskMode::per_step; }
  Index mask_count() const { return options_.tied_masks() ? 1 : gates; }
  Index steps_cols() const { return input_.steps * batch_; }
  /// Columns of a dropout mask: one per sample, or one per step and sample (per_step).
  Index mask_cols() const { return per_step_masks() ? steps_cols() : batch_; }
  /// The column of a dropout mask that applies to sample n at step t.
  Index mask_col(Index t, Index n) const { return per_step_masks() ? t * batch_ + n : n; }
  /// Columns of step t in a time-major buffer.
  template <class M>
  auto step(M& m, Index t) const {
    return m.middleCols(t * batch_, batch_);
  }

  void resize_buffers() {
    const Index g = gates * units_, tb = steps_cols(), h = units_, f = input_.features;
    xs_.resize(f, tb);
    gx_.resize(g, tb);
    gh_.resize(g, tb);
    acts_.resize(g, tb);
    dgx_.resize(g, tb);
    if constexpr (Cell == CellKind::gru) dgh_.resize(g, tb);
    hs_.resize(h, tb + batch_);
    if constexpr (Cell == CellKind::lstm) {
      cs_.resize(h, tb + batch_);
      tc_.resize(h, tb);
    }
    dh_.resize(h, batch_);
    dc_.resize(h, batch_);
    if (recurrent_masks_ > 0) dhm_.resize(recurrent_masks_ * h, batch_);
    output_.resize(options_.return_sequences() ? input_.steps * h : h, batch_);
  }

  void draw_mask(Generator& gen, double p, const KeepThreshold& keep, Index rows,
                 Matrix<T>& mask) {
    mask.resize(rows, mask_cols());
    draw_bernoulli(gen, keep, static_cast<T>(1.0 / (1.0 - p)), T(0), mask.data(), mask.size());
  }

  /// The Zoneout update indicators d_t of every step (H x T*batch): Bernoulli(1 - p) when
  /// sampling, 1 - p otherwise; empty when p = 0.
  void draw_zoneout(Generator* gen, double p, const KeepThreshold& keep, Matrix<T>& d) {
    if (p == 0.0) {
      d.resize(0, 0);
      return;
    }
    d.resize(units_, steps_cols());
    if (gen == nullptr) {
      d.setConstant(static_cast<T>(1.0 - p));
    } else {
      draw_bernoulli(*gen, keep, T(1), T(0), d.data(), d.size());
    }
  }

  /// out = beta out + w (b .* mask): one product of all gates (no mask, or one tied mask), or
  /// one per gate with its own mask (w, out: gate k's rows [k*R, (k+1)*R); mask: [k*D, (k+1)*D)
  /// for D = b's rows). The mask is multiplied in while the GEMM packs b, so no masked copy of b
  /// is written and read back (Gemm::multiply_scaled; its columns repeat along b's: a mask per
  /// sample over every step). Transposed b: the weight gradients, where b holds the samples in
  /// its columns all the same.
  template <Op OpB, class W, class B, class M, class Out>
  static void gate_products(Gemm<T>& gemm, const W& w, const B& b, const M& mask, Index masks,
                            Out&& out, T beta) {
    if (masks == 0) {
      gemm.template multiply<Op::none, OpB>(w, b, out, beta);
    } else if (masks == 1) {
      gemm.template multiply_scaled<Op::none, OpB>(w, b, mask, out, beta);
    } else {
      const Index r = w.rows() / gates, d = mask.rows() / gates;
      for (Index k = 0; k < gates; ++k)
        gemm.template multiply_scaled<Op::none, OpB>(
            w.middleRows(k * r, r), b, mask.middleRows(k * d, d), out.middleRows(k * r, r), beta);
    }
  }

  /// gx = W_ih x_t + b_ih for every step: x copied time-major, then one GEMM (one per gate with
  /// untied input masks; the masks applied inside the GEMM).
  void project_inputs(const Matrix<T>& x) {
    const Index f = input_.features;
    for (Index n = 0; n < batch_; ++n)
      for (Index t = 0; t < input_.steps; ++t) xs_.col(t * batch_ + n) = x.col(n).segment(t * f, f);
    gate_products<Op::none>(input_gemm_, weight_ih_, xs_, mask_x_, input_masks_, gx_, T(0));
    gx_.colwise() += bias_ih_;
  }

  /// gh_t = W_hh h_{t-1} + b_hh (h_{t-1} times each gate's recurrent mask, inside the GEMM).
  void project_hidden(Index t) {
    auto gh = step(gh_, t);
    gh.colwise() = bias_hh_;
    const auto mask = recurrent_masks_ > 0 ? mask_h_.middleCols(mask_col(t, 0), batch_)
                                           : mask_h_.middleCols(0, 0);
    gate_products<Op::none>(hidden_gemm_, weight_hh_, step(hs_, t), mask, recurrent_masks_, gh,
                            T(1));
  }

  /// The gates of step t, vectorized over the step's units and samples: reads gx_, gh_ and the
  /// state at block t, writes acts_ (and tc_) at block t and the state at block t + 1.
  void step_forward(Index t) {
    const Index h = units_;
    auto a = step(acts_, t).array();
    auto gate = [&](Index k) { return a.middleRows(k * h, h); };
    const auto gx = step(gx_, t).array();
    const auto gh = step(gh_, t).array();
    const auto h_prev = step(hs_, t).array();
    auto h_next = step(hs_, t + 1).array();
    if constexpr (Cell == CellKind::lstm) {
      a = gx + gh;
      gate(0) = gate(0).logistic();
      gate(1) = gate(1).logistic();
      gate(2) = gate(2).tanh();
      gate(3) = gate(3).logistic();
      const auto c_prev = step(cs_, t).array();
      auto c_next = step(cs_, t + 1).array();
      auto tc = step(tc_, t).array();
      c_next = gate(1) * c_prev + gate(0) * gate(2);  // c~ for now
      tc = c_next.tanh();
      h_next = gate(3) * tc;  // h~ for now
      if (zc_.size() != 0) c_next = c_prev + step(zc_, t).array() * (c_next - c_prev);
    } else {
      a.topRows(2 * h) = (gx.topRows(2 * h) + gh.topRows(2 * h)).logistic();  // r and z
      gate(2) = (gx.bottomRows(h) + gate(0) * gh.bottomRows(h)).tanh();
      h_next = (T(1) - gate(1)) * gate(2) + gate(1) * h_prev;
    }
    if (zh_.size() != 0) h_next = h_prev + step(zh_, t).array() * (h_next - h_prev);
  }

  /// Step t's gradients: from dh_ (and dc_) = dL/d state at block t + 1, writes the
  /// pre-activation gradients dgx_ (and the GRU's hidden-side dgh_) at block t, and leaves in
  /// dh_ (dc_) the part of dL/d state at block t that does not go through W_hh.
  void step_backward(Index t) {
    const Index h = units_, base = t * batch_;
    for (Index n = 0; n < batch_; ++n) {
      const Index j = base + n;
      const T* a = &acts_(0, j);
      T* dg = &dgx_(0, j);
      T* dh = &dh_(0, n);
      if constexpr (Cell == CellKind::lstm) {
        const T* c_prev = &cs_(0, j);
        const T* tc = &tc_(0, j);
        T* dc = &dc_(0, n);
        for (Index u = 0; u < h; ++u) {
          const T dzh = zh_.size() ? zh_(u, j) : T(1), dzc = zc_.size() ? zc_(u, j) : T(1);
          const T i = a[u], f = a[h + u], g = a[2 * h + u], o = a[3 * h + u];
          const T dht = dh[u] * dzh;
          const T dct = dc[u] * dzc + dht * o * (T(1) - tc[u] * tc[u]);
          dg[u] = dct * g * i * (T(1) - i);
          dg[h + u] = dct * c_prev[u] * f * (T(1) - f);
          dg[2 * h + u] = dct * i * (T(1) - g * g);
          dg[3 * h + u] = dht * tc[u] * o * (T(1) - o);
          dc[u] = dct * f + dc[u] * (T(1) - dzc);
          dh[u] = dh[u] * (T(1) - dzh);
        }
      } else {
        const T* h_prev = &hs_(0, j);
        const T* gh = &gh_(0, j);
        T* dgh = &dgh_(0, j);
        for (Index u = 0; u < h; ++u) {
          const T dzh = zh_.size() ? zh_(u, j) : T(1);
          const T r = a[u], z = a[h + u], cand = a[2 * h + u];
          const T dht = dh[u] * dzh;
          const T dn = dht * (T(1) - z) * (T(1) - cand * cand);
          const T dr = dn * gh[2 * h + u] * r * (T(1) - r);
          const T dz = dht * (h_prev[u] - cand) * z * (T(1) - z);
          dg[u] = dgh[u] = dr;
          dg[h + u] = dgh[h + u] = dz;
          dg[2 * h + u] = dn;
          dgh[2 * h + u] = dn * r;
          dh[u] = dh[u] * (T(1) - dzh) + dht * z;
        }
      }
    }
  }

  /// Hidden-side pre-activation gradients (the LSTM's are dgx_).
  Matrix<T>& hidden_gradients() {
    if constexpr (Cell == CellKind::lstm) {
      return dgx_;
    } else {
      return dgh_;
    }
  }

  /// dh_ += W_hh^T dgh_t (through the recurrent masks).
  void backpropagate_hidden(Index t) {
    const Index h = units_;
    auto dgh = step(hidden_gradients(), t);
    if (recurrent_masks_ == 0) {
      recurrent_input_gemm_.template multiply<Op::transpose, Op::none>(weight_hh_, dgh, dh_, T(1));
      return;
    }
    // d(masked h) of each mask, then dh += sum over masks of mask * d(masked h) in one pass.
    if (recurrent_masks_ == 1) {
      recurrent_input_gemm_.template multiply<Op::transpose, Op::none>(weight_hh_, dgh, dhm_, T(0));
    } else {
      for (Index k = 0; k < gates; ++k)
        recurrent_input_gemm_.template multiply<Op::transpose, Op::none>(
            weight_hh_.middleRows(k * h, h), dgh.middleRows(k * h, h), dhm_.middleRows(k * h, h),
            T(0));
    }
    for (Index n = 0; n < batch_; ++n) {
      const auto mask = mask_h_.col(mask_col(t, n));
      const auto dhm = dhm_.col(n);
      const auto term = [&](Index k) {
        return dhm.segment(k * h, h).cwiseProduct(mask.segment(k * h, h));
      };
      auto dh = dh_.col(n);
      // One pass over dh for all gates, adding in gate order (the bits of one pass per gate).
      if (recurrent_masks_ == 1) {
        dh += term(0);
      } else if constexpr (Cell == CellKind::lstm) {
        dh = dh + term(0) + term(1) + term(2) + term(3);
      } else {
        dh = dh + term(0) + term(1) + term(2);
      }
    }
  }

  /// dW_ih = dgx (xs .* mask_x)^T, dW_hh = dgh (hs .* mask_h)^T, db = row sums: GEMMs over all
  /// steps, the masks applied inside them as in the forward products.
  void parameter_gradients() {
    const Matrix<T>& dgh = hidden_gradients();
    gate_products<Op::transpose>(input_weight_gemm_, dgx_, xs_, mask_x_, input_masks_,
                                 weight_ih_grad_, T(0));
    gate_products<Op::transpose>(hidden_weight_gemm_, dgh, hs_.leftCols(steps_cols()), mask_h_,
                                 recurrent_masks_, weight_hh_grad_, T(0));
    bias_ih_grad_.noalias() = dgx_.rowwise().sum();
    bias_hh_grad_.noalias() = dgh.rowwise().sum();
  }

  /// dx = W_ih^T dgx, back in the sequence layout, through the input masks.
  void input_gradient() {
    const Index h = units_, f = input_.features;
    dx_.resize(input_.size(), batch_);
    dx_.setZero();
    const Index products = input_masks_ > 1 ? gates : 1;
    for (Index k = 0; k < products; ++k) {
      if (products == 1) {
        input_grad_gemm_.template multiply<Op::transpose, Op::none>(weight_ih_, dgx_, dxs_);
      } else {
        input_grad_gemm_.template multiply<Op::transpose, Op::none>(
            weight_ih_.middleRows(k * h, h), dgx_.middleRows(k * h, h), dxs_);
      }
      for (Index n = 0; n < batch_; ++n)
        for (Index t = 0; t < input_.steps; ++t) {
          auto dst = dx_.col(n).segment(t * f, f);
          const auto src = dxs_.col(t * batch_ + n);
          if (input_masks_ > 0) {
            dst += src.cwiseProduct(mask_x_.col(mask_col(t, n)).segment(k * f, f));
          } else {
            dst += src;
          }
        }
    }
  }

  void write_output() {
    const Index h = units_;
    if (!options_.return_sequences()) {
      output_ = hs_.rightCols(batch_);
      return;
    }
    for (Index n = 0; n < batch_; ++n)
      for (Index t = 0; t < input_.steps; ++t)
        output_.col(n).segment(t * h, h) = hs_.col((t + 1) * batch_ + n);
  }

  SequenceShape input_;
  Index units_;
  RecurrentOptions options_;
  KeepThreshold keep_x_, keep_h_, keep_zc_, keep_zh_;  // built once: drawing allocates nothing
  Matrix<T> weight_ih_, weight_hh_, weight_ih_grad_, weight_hh_grad_;
  Vector<T> bias_ih_, bias_hh_, bias_ih_grad_, bias_hh_grad_;

  Index batch_ = 0;
  Index input_masks_ = 0, recurrent_masks_ = 0;  // masks applied in the last forward (0: none)
  bool forwarded_ = false;
  // Time-major buffers: block t = columns [t*batch, (t+1)*batch).
  Matrix<T> xs_;        // x_t, unmasked (the masks are applied inside the GEMMs)
  Matrix<T> gx_, gh_;   // W_ih x_t + b_ih, W_hh h_{t-1} + b_hh
  Matrix<T> acts_;      // gate activations
  Matrix<T> hs_, cs_;   // h_t, c_t at block t (block 0: zero initial state)
  Matrix<T> tc_;        // LSTM: tanh(c~_t)
  Matrix<T> zc_, zh_;   // Zoneout update indicators d_t
  Matrix<T> mask_x_, mask_h_;  // per-sequence masks: masks*F x batch, masks*H x batch
  Matrix<T> dgx_, dgh_, dh_, dc_, dhm_, dxs_, dx_, output_;
  // One Gemm per product shape: a Gemm keeps the workspace of its last shape, so two shapes
  // through one object would reallocate on every call (Eigen's kernel path, -march=native).
  Gemm<T> input_gemm_, hidden_gemm_, recurrent_input_gemm_, input_weight_gemm_, hidden_weight_gemm_,
      input_grad_gemm_;
};

}  // namespace dropnet
