// all.cu is the one translation unit the PTX modules are built from (gen.sh) and the
// shim tests compile: every kernel source, once.
#include "elementwise.cu"
#include "matmul.cu"
#include "gemm.cu"
#include "dense_backward.cu"
#include "maxout.cu"
#include "random.cu"
#include "losses.cu"
#include "optim.cu"
#include "columns.cu"
#include "gather.cu"
#include "conv.cu"
#include "batchnorm.cu"
