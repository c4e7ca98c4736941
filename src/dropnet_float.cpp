// dropnet::compiled, float instantiations (see instantiate.inc).
#define DROPNET_SCALAR float
#include "instantiate.inc"
