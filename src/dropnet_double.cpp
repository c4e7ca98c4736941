// dropnet::compiled, double instantiations (see instantiate.inc).
#define DROPNET_SCALAR double
#include "instantiate.inc"
