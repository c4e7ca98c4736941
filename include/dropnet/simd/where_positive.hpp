#pragma once
// where_positive(z, d, positive, negative): the Eigen expression "z > 0 ? positive(z, d) :
// negative(z, d)", coefficient-wise, evaluated a SIMD packet at a time.
//
// Eigen 3.4's select() and its comparison operators have no packet path, so an expression like
// (z > 0).select(z, alpha * z.min(0).expm1()) runs one scalar at a time and calls the scalar
// expm1 even though Eigen has a vectorized one: ELU's forward pass ran 1.6x slower than a plain
// loop over std::expm1. This expression compares and blends in registers instead.
//
// `positive` and `negative` are generic callables of (z, d) written with Eigen's packet
// primitives (Eigen::internal::pmul, pexp, pset1, ...), which also accept plain scalars, so one
// lambda serves both the packets and the scalar tail. The packet path evaluates both branches on
// every lane and keeps one, so a branch must not trap on the other branch's inputs (clamp first,
// as ELU does with min(z, 0)). `Vectorize` is false where a primitive has no packet version for
// the scalar type (e.g. Eigen has no vectorized double expm1): then Eigen evaluates the scalar
// form, which calls one branch per coefficient.

#include <Eigen/Core>

namespace dropnet::simd {

/// The Eigen binary functor behind where_positive.
template <class Positive, class Negative, bool Vectorize>
struct WherePositiveOp {
  Positive positive;  ///< the value where z > 0
  Negative negative;  ///< the value elsewhere (z <= 0 or NaN)

  /// The scalar form, for the tail that does not fill a packet: evaluates one branch.
  template <class Scalar>
  Scalar operator()(const Scalar& z, const Scalar& d) const {
    return z > Scalar(0) ? positive(z, d) : negative(z, d);
  }

  /// The packet form: both branches on every lane, then a blend on z > 0.
  template <class Packet>
  Packet packetOp(const Packet& z, const Packet& d) const {
    namespace ei = Eigen::internal;
    using Scalar = typename ei::unpacket_traits<Packet>::type;
    const Packet is_positive = ei::pcmp_lt(ei::pset1<Packet>(Scalar(0)), z);
    return ei::pselect(is_positive, positive(z, d), negative(z, d));
  }
};

/// "z > 0 ? positive(z, d) : negative(z, d)" for every coefficient of the arrays z and d (same
/// shape), as a lazy Eigen expression; see the file comment for what the callables may do.
template <bool Vectorize, class Z, class D, class Positive, class Negative>
auto where_positive(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<D>& d, Positive positive,
                    Negative negative) {
  return z.binaryExpr(d, WherePositiveOp<Positive, Negative, Vectorize>{positive, negative});
}

/// Whether Eigen vectorizes exp and expm1 for Scalar (float yes, double has no expm1 packet).
template <class Scalar>
constexpr bool has_packet_expm1 = Eigen::internal::packet_traits<Scalar>::HasExp &&
                                  Eigen::internal::packet_traits<Scalar>::HasExpm1;

}  // namespace dropnet::simd

namespace Eigen::internal {

/// Lets Eigen take the packet path of WherePositiveOp when the callables support it.
template <class Positive, class Negative, bool Vectorize>
struct functor_traits<dropnet::simd::WherePositiveOp<Positive, Negative, Vectorize>> {
  enum { Cost = 20, PacketAccess = Vectorize };
};

}  // namespace Eigen::internal
