// dropnet::compiled: the explicit instantiations listed in dropnet/instantiations.hpp, for float
// and double. Translation units that link this library and see DROPNET_COMPILED_LIB declare
// the same list `extern template` and use these definitions instead of their own.

#define DROPNET_COMPILED_LIB_SOURCE
#include <dropnet/instantiations.hpp>

namespace dropnet {
#define DROPNET_INSTANTIATE(...) template __VA_ARGS__;
#define DROPNET_SCALAR float
DROPNET_FOR_EACH_INSTANTIATION
#undef DROPNET_SCALAR
#define DROPNET_SCALAR double
DROPNET_FOR_EACH_INSTANTIATION
#undef DROPNET_SCALAR
#undef DROPNET_INSTANTIATE
}  // namespace dropnet
