// The PIT GEMM dispatcher (ops/pit/gemm.h): validate once (shapes, dtypes, devices, index and
// operand agreement; each message names the problem and the fix), then run the CPU reference
// (ops/pit/cpu) or the CUDA kernels (ops/pit/cuda/gemm.h) on the current stream.
#include "ops/pit/gemm.h"

#include <cstdint>
#include <string>

#include "ops/kernels.h"
#include "ops/pit/detect.h"
#include "ops/pit/cpu/gemm.h"
#if PIT_WITH_CUDA && defined(PIT_CUDA_PIT_GEMM)  // set by ops/pit/CMakeLists.txt
#include "ops/pit/cuda/gemm.h"
#define PIT_HAS_CUDA_PIT_GEMM 1
#else
#define PIT_HAS_CUDA_PIT_GEMM 0
#endif

namespace pit::sparse {

void check_fused_activation(UnaryOp act, const char* op) {
  PIT_CHECK(act == UnaryOp::relu || act == UnaryOp::gelu_tanh || act == UnaryOp::gelu_erf || act == UnaryOp::silu, op,
            ": activation ", unary_name(act), " is not supported; use relu, gelu_tanh, gelu_erf or silu");
}

namespace {


void check_operand(const Tensor& t, const char* op, const char* what, Device device) {
  PIT_CHECK(t.defined(), op, ": ", what, " is undefined");
  PIT_CHECK(t.device() == device, op, ": ", what, " is on ", t.device().str(), " but the first operand is on ",
            device.str(), "; move it with Tensor::to");
  PIT_CHECK(is_floating(t.dtype()), op, ": ", what, " has dtype ", dtype_name(t.dtype()),
            "; supported: f32, bf16, f16 (and f64 on the CPU)");
  PIT_CHECK(!(t.is_cuda() && t.dtype() == DType::f64), op, ": ", what,
            " is f64 on CUDA; the PIT kernels take f32, bf16 or f16: convert with Tensor::to");
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op, const char* wa, const char* wb) {
  PIT_CHECK(a.dtype() == b.dtype(), op, ": ", wa, " is ", dtype_name(a.dtype()), " but ", wb, " is ",
            dtype_name(b.dtype()), "; one dtype per call: convert one of them with Tensor::to");
}

void check_output(const Tensor& c, const Shape& want, const char* op, const char* what) {
  PIT_CHECK(c.defined() && c.shape() == want, op, ": ", what, " must be ", shape_str(want), ", got ",
            shape_of(c));
  PIT_CHECK(c.is_contiguous(), op, ": ", what, " must be contiguous (it is written in place)");
}

void check_epilogue(const Epilogue& ep, int64_t n, int64_t segments, const Tensor& c, const char* op) {
  if (ep.write == Write::accumulate) {
    PIT_CHECK(!ep.bias.defined() && !ep.activation, op,
              ": bias and activation apply to Write::store only; add them after accumulating");
  }
  if (ep.activation) check_fused_activation(ep.act, op);
  if (ep.pre.defined()) {
    PIT_CHECK(ep.activation && ep.write == Write::store, op,
              ": Epilogue::pre (the values before the activation) needs activation = true and Write::store");
    check_output(ep.pre, c.shape(), op, "Epilogue::pre (C's shape)");
    check_operand(ep.pre, op, "Epilogue::pre", c.device());
    check_same_dtype(ep.pre, c, op, "Epilogue::pre", "C");
    PIT_CHECK(!bytes_overlap(ep.pre, c), op, ": Epilogue::pre must not share bytes with C; give it a buffer of its own");
  }
  PIT_CHECK(!ep.scale_after_activation || ep.activation, op,
            ": Epilogue::scale_after_activation needs activation = true (it scales the activation's output)");
  if (!ep.bias.defined()) return;
  check_operand(ep.bias, op, "the bias", c.device());
  check_same_dtype(ep.bias, c, op, "the bias", "C");
  const bool ok = (ep.bias.dim() == 1 && ep.bias.size(0) == n) ||
                  (segments > 0 && ep.bias.dim() == 2 && ep.bias.size(0) == segments && ep.bias.size(1) == n);
  PIT_CHECK(ok, op, ": bias must be [N] = [", n, "]", segments > 0 ? " or [S, N]" : "", ", got ",
            shape_of(ep.bias));
  PIT_CHECK(ep.bias.is_contiguous(), op, ": the bias must be contiguous");
}

[[noreturn, maybe_unused]] void no_cuda(const char* op) {
  PIT_THROW(op, ": the CUDA PIT GEMM kernels are not built (ops/pit/cuda/gemm.h missing or CUDA off)");
}

#if PIT_HAS_CUDA_PIT_GEMM
#define PIT_PIT_GEMM_CALL(device, op, ...)                                          \
  do {                                                                              \
    if ((device).is_cuda()) {                                                       \
      ::pit::sparse::cuda::op(__VA_ARGS__, current_stream(device));                 \
    } else {                                                                        \
      ::pit::sparse::cpu::op(__VA_ARGS__);                                          \
    }                                                                               \
  } while (0)
#else
#define PIT_PIT_GEMM_CALL(device, op, ...)                                          \
  do {                                                                              \
    if ((device).is_cuda()) no_cuda(#op);                                           \
    ::pit::sparse::cpu::op(__VA_ARGS__);                                            \
  } while (0)
#endif

constexpr const char* kBuildIndex = "build indices with ops/pit/detect.h";

void check_rowset(const RowSetIndex& idx, Device device, const char* op) { check_row_set(idx, device, op, kBuildIndex); }

// The entries' weights (the gates) that use_weights reads.
void check_entry_weights(const RowSetIndex& idx, Device device, const char* op) {
  check_row_set_weights(idx, device, op, "use_weights needs them: pass gates to rows_from_routing");
}

void check_tiles(const Tensor& offsets, const Tensor& cols, int64_t block_rows, int64_t capacity,
                 Device device, const char* op) {
  check_index_array(offsets, block_rows + 1, device, op, "offsets", kBuildIndex);
  check_index_array(cols, capacity, device, op, "the column list", kBuildIndex);
}

}  // namespace

bool cuda_gemm_built() { return PIT_HAS_CUDA_PIT_GEMM != 0; }

// ---- M-gather ----------------------------------------------------------------------------------
void gather_gemm(const Tensor& a_in, const RowSetIndex& idx, const Tensor& b_in, Tensor& c,
                 const GatherGemmArgs& args_in) {
  const char* op = "gather_gemm";
  const Device dev = a_in.defined() ? a_in.device() : Device::cpu();
  check_operand(a_in, op, "A", dev);
  check_operand(b_in, op, "B", dev);
  check_same_dtype(a_in, b_in, op, "A", "B");
  check_rowset(idx, dev, op);
  PIT_CHECK(a_in.dim() == 2, op, ": A must be 2-D [rows, K], got ", shape_of(a_in));
  const int64_t cap = idx.rows.numel(), k = a_in.size(1), s = idx.num_segments;
  const int64_t a_rows = args_in.a_gathered ? idx.num_rows : cap;
  PIT_CHECK(a_in.size(0) == a_rows, op, ": A has ", a_in.size(0), " rows but ",
            args_in.a_gathered ? "the row set names rows of a matrix of " : "compact A needs one row per index entry: ",
            a_rows, args_in.a_gathered ? " rows" : " (the index capacity)");
  const bool chunks = idx.segment_cols > 0;
  PIT_CHECK(b_in.dim() == 2 || (!chunks && b_in.dim() == 3 && b_in.size(0) == s), op, ": B must be ",
            args_in.b_trans ? "[N, K]" : "[K, N]", chunks ? "" : " or per segment [S, ., .] with S = num_segments",
            ", got ", shape_of(b_in), " for ", s, " segments");
  const int64_t bk = args_in.b_trans ? b_in.size(-1) : b_in.size(-2);
  const int64_t n = args_in.b_trans ? b_in.size(-2) : b_in.size(-1);
  PIT_CHECK(bk == k, op, ": A has K = ", k, " columns but B", args_in.b_trans ? " (b_trans, [N, K])" : " ([K, N])",
            " has K = ", bk, ": ", shape_of(b_in));
  if (chunks) {
    PIT_CHECK(args_in.epilogue.write == Write::accumulate, op,
              ": K-chunk segments (segment_cols > 0) add partial products: use Write::accumulate (with zero_c to start from 0)");
    const int64_t want = std::max<int64_t>(1, (k + idx.segment_cols - 1) / idx.segment_cols);
    PIT_CHECK(s == want, op, ": the index has ", s, " K-chunk segments of ", idx.segment_cols, " columns, but A's K = ",
              k, " needs ", want, "; the index was built for another width (detect_rows on A itself)");
  }
  if (args_in.use_weights) check_entry_weights(idx, dev, op);
  check_output(c, {args_in.c_scattered ? idx.num_rows : cap, n}, op, "C");
  check_same_dtype(c, a_in, op, "C", "A");
  check_operand(c, op, "C", dev);
  check_epilogue(args_in.epilogue, n, chunks ? 0 : s, c, op);
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  GatherGemmArgs args = args_in;
  if (args.zero_c) c.zero_();
  args.zero_c = false;  // done here, for both back-ends
  PIT_PIT_GEMM_CALL(dev, gather_gemm, a, idx, b, c, args);
}

void gather_weight_grad(const Tensor& a_in, const Tensor& g_in, const RowSetIndex& idx, Tensor& db,
                        const GatherWeightGradArgs& args) {
  const char* op = "gather_weight_grad";
  const Device dev = a_in.defined() ? a_in.device() : Device::cpu();
  check_operand(a_in, op, "A", dev);
  check_operand(g_in, op, "G", dev);
  check_same_dtype(a_in, g_in, op, "A", "G");
  check_rowset(idx, dev, op);
  PIT_CHECK(idx.segment_cols == 0, op, ": the weight gradient takes expert segments (segment_cols == 0)");
  PIT_CHECK(a_in.dim() == 2 && g_in.dim() == 2, op, ": A and G must be 2-D, got ", shape_of(a_in), " and ",
            shape_of(g_in));
  const int64_t cap = idx.rows.numel(), k = a_in.size(1), n = g_in.size(1), s = idx.num_segments;
  PIT_CHECK(a_in.size(0) == (args.a_gathered ? idx.num_rows : cap), op, ": A has ", a_in.size(0),
            " rows; expected ", args.a_gathered ? idx.num_rows : cap, args.a_gathered ? " (num_rows)" : " (capacity)");
  PIT_CHECK(g_in.size(0) == (args.g_gathered ? idx.num_rows : cap), op, ": G has ", g_in.size(0),
            " rows; expected ", args.g_gathered ? idx.num_rows : cap, args.g_gathered ? " (num_rows)" : " (capacity)");
  if (args.use_weights) check_entry_weights(idx, dev, op);
  const Shape per = args.b_trans ? Shape{n, k} : Shape{k, n};
  const bool ok = (db.defined() && db.dim() == 3 && db.shape() == Shape{s, per[0], per[1]}) ||
                  (db.defined() && s == 1 && db.shape() == per);
  PIT_CHECK(ok, op, ": dB must be [S, ", per[0], ", ", per[1], "] (S = ", s, args.b_trans ? ", b_trans" : "",
            s == 1 ? "; or 2-D for one segment" : "", "), got ", shape_of(db));
  PIT_CHECK(db.is_contiguous(), op, ": dB must be contiguous");
  check_same_dtype(db, a_in, op, "dB", "A");
  check_operand(db, op, "dB", dev);
  const Tensor a = a_in.contiguous(), g = g_in.contiguous();
  PIT_PIT_GEMM_CALL(dev, gather_weight_grad, a, g, idx, db, args);
}

// ---- K-condense and blocks -----------------------------------------------------------------------
namespace {

struct TileDesc {
  const Tensor& offsets;
  const Tensor& cols;
  const Tensor& values;
  int64_t rows, k, tr, tc;
  int64_t entries;  // >= 0: a compact index (arrays hold exactly this many entries)
};

void check_tile_index(const TileDesc& t, Device dev, const char* op, bool need_values) {
  PIT_CHECK(t.tr >= 1 && t.tc >= 1, op, ": the index has no micro-tile shape (was it detected?)");
  const int64_t br = (t.rows + t.tr - 1) / t.tr, bc = (t.k + t.tc - 1) / t.tc;
  PIT_CHECK(t.entries <= br * bc, op, ": the index says ", t.entries, " entries but a ", t.rows, "x", t.k,
            " matrix has ", br * bc, " micro-tiles");
  const int64_t listed = t.entries >= 0 ? t.entries : br * bc;
  check_tiles(t.offsets, t.cols, br, listed, dev, op);
  if (!need_values) return;
  PIT_CHECK(t.values.defined(), op, ": the index has no values; detect with DetectOptions{.values = true}");
  PIT_CHECK(t.values.device() == dev, op, ": index values on ", t.values.device().str(), ", operands on ", dev.str());
  PIT_CHECK(t.values.numel() >= listed * t.tr * t.tc && t.values.is_contiguous(), op, ": index values must be contiguous [",
            t.entries >= 0 ? "entries" : "capacity", ", tile] = [", listed, ", ", t.tr * t.tc, "], got ",
            shape_of(t.values));
}

void tile_forward_checks(const TileDesc& a, const Tensor& b, const Tensor& c, const Epilogue& ep, const char* op) {
  const Device dev = b.defined() ? b.device() : Device::cpu();
  check_operand(b, op, "B", dev);
  check_tile_index(a, dev, op, true);
  check_same_dtype(a.values, b, op, "the index values (A)", "B");
  PIT_CHECK(b.dim() == 2 && b.size(0) == a.k, op, ": B must be [K, N] with K = ", a.k, " (A's columns), got ",
            shape_of(b));
  check_output(c, {a.rows, b.size(1)}, op, "C");
  check_operand(c, op, "C", dev);
  check_same_dtype(c, b, op, "C", "B");
  check_epilogue(ep, b.size(1), 0, c, op);
}

void tile_tn_checks(const TileDesc& a, const Tensor& g, const Tensor& db, const char* op) {
  const Device dev = g.defined() ? g.device() : Device::cpu();
  check_operand(g, op, "G", dev);
  check_tile_index(a, dev, op, true);
  check_same_dtype(a.values, g, op, "the index values (A)", "G");
  PIT_CHECK(g.dim() == 2 && g.size(0) == a.rows, op, ": G must be [M, N] with M = ", a.rows, ", got ", shape_of(g));
  check_output(db, {a.k, g.size(1)}, op, "dB");
  check_operand(db, op, "dB", dev);
  check_same_dtype(db, g, op, "dB", "G");
}

void sampled_checks(const Tensor& a, const Tensor& b, const TileDesc& out, bool a_trans, bool b_trans, const char* op) {
  const Device dev = a.defined() ? a.device() : Device::cpu();
  check_operand(a, op, "A", dev);
  check_operand(b, op, "B", dev);
  check_same_dtype(a, b, op, "A", "B");
  PIT_CHECK(a.dim() == 2 && b.dim() == 2, op, ": A and B must be 2-D, got ", shape_of(a), " and ", shape_of(b));
  const int64_t m = a_trans ? a.size(1) : a.size(0), ka = a_trans ? a.size(0) : a.size(1);
  const int64_t kb = b_trans ? b.size(1) : b.size(0), n = b_trans ? b.size(0) : b.size(1);
  PIT_CHECK(ka == kb, op, ": op(A) is [", m, ", ", ka, "] but op(B) is [", kb, ", ", n, "]");
  PIT_CHECK(out.rows == m && out.k == n, op, ": the output index describes a ", out.rows, "x", out.k,
            " matrix but op(A) op(B) is ", m, "x", n);
  check_tile_index(out, dev, op, true);
  check_same_dtype(out.values, a, op, "the output values", "A");
}

}  // namespace

namespace {

// Empty products, the same on every device and kernel (no launch sees a zero-size operand):
// true when C is empty, or K is 0 and C is the epilogue of an empty sum (the bias, or 0, through
// the activation, also into ep.pre; nothing to add when accumulating).
bool empty_product(Tensor& c, int64_t k, const Epilogue& ep) {
  if (c.numel() == 0) return true;
  if (k > 0) return false;
  if (ep.write == Write::accumulate) return true;
  const Tensor pre = ep.bias.defined() ? ep.bias.expand(c.shape()).contiguous() : zeros(c.shape(), c.dtype(), c.device());
  if (ep.activation && ep.pre.defined()) Tensor(ep.pre).copy_(pre);
  c.copy_(ep.activation ? kernels::unary(ep.act, pre) : pre);
  return true;
}

// A sampled product over an empty inner dim (op(A) [M, 0]): every listed value is 0.
bool sampled_of_nothing(const Tensor& a, bool a_trans, Tensor& values) {
  if ((a_trans ? a.size(0) : a.size(1)) > 0) return false;
  if (values.numel() > 0) values.zero_();
  return true;
}

// dB = A^T G with no rows (M = 0) or an empty dB: zeros where stored.
bool empty_tn(const Tensor& g, Tensor& db, Write write) {
  if (db.numel() == 0) return true;
  if (g.size(0) > 0 && g.size(1) > 0) return false;
  if (write == Write::store) db.zero_();
  return true;
}

}  // namespace

void condense_gemm(const KListIndex& a, const Tensor& b_in, Tensor& c, const Epilogue& ep) {
  tile_forward_checks({a.offsets, a.k, a.values, a.rows, a.cols, a.block_rows, 1, a.entries}, b_in, c, ep, "condense_gemm");
  if (empty_product(c, a.cols, ep)) return;
  const Tensor b = b_in.contiguous();
  PIT_PIT_GEMM_CALL(b.device(), condense_gemm, a, b, c, ep);
}

void block_gemm(const BlockListIndex& a, const Tensor& b_in, Tensor& c, const Epilogue& ep) {
  tile_forward_checks({a.offsets, a.col, a.values, a.rows, a.cols, a.block, a.block, a.entries}, b_in, c, ep, "block_gemm");
  if (empty_product(c, a.cols, ep)) return;
  const Tensor b = b_in.contiguous();
  PIT_PIT_GEMM_CALL(b.device(), block_gemm, a, b, c, ep);
}

namespace {

// The checks of block_linear (in = x [T, V.cols], out = y [T, V.rows]) and, transposed, of
// block_linear_dx (in = dy [T, V.rows], out = dx [T, V.cols]).
void check_block_linear(const Tensor& in, const BlockListIndex& v, const Tensor& out, bool transposed, const char* op) {
  const char *a = transposed ? "dy" : "x", *c = transposed ? "dx" : "y";
  const int64_t k = transposed ? v.rows : v.cols, n = transposed ? v.cols : v.rows;
  const Device dev = in.defined() ? in.device() : Device::cpu();
  check_operand(in, op, a, dev);
  check_tile_index({v.offsets, v.col, v.values, v.rows, v.cols, v.block, v.block, v.entries}, dev, op, true);
  check_same_dtype(v.values, in, op, "the index values (V)", a);
  PIT_CHECK(in.dim() == 2 && in.size(1) == k, op, ": ", a, " must be [T, ", k, "] (V's ", transposed ? "rows" : "columns",
            "), got ", shape_of(in));
  check_output(out, {in.size(0), n}, op, c);
  check_operand(out, op, c, dev);
  check_same_dtype(out, in, op, c, a);
}

}  // namespace

void block_linear(const Tensor& x_in, const BlockListIndex& v, Tensor& y, const Tensor& bias, bool relu) {
  const char* op = "block_linear";
  const Device dev = x_in.defined() ? x_in.device() : Device::cpu();
  check_block_linear(x_in, v, y, false, op);
  if (bias.defined()) {
    check_operand(bias, op, "bias", dev);
    check_same_dtype(bias, x_in, op, "bias", "x");
    PIT_CHECK(bias.dim() == 1 && bias.size(0) == v.rows, op, ": bias must be [", v.rows, "], got ", shape_of(bias));
  }
  const Tensor x = x_in.contiguous(), b = bias.defined() ? bias.contiguous() : Tensor();
  if (y.numel() == 0) return;
  if (v.cols == 0) {  // no inputs: the bias (or 0), through the ReLU
    const Tensor out = b.defined() ? b.expand(y.shape()) : zeros(y.shape(), y.dtype(), dev);
    y.copy_(relu ? kernels::unary(UnaryOp::relu, out.contiguous()) : out);
    return;
  }
#if PIT_HAS_CUDA_PIT_GEMM
  if (dev.is_cuda() && cuda::block_linear_takes(x, v)) {
    cuda::block_linear(x, v, y, b, relu, current_stream(dev));
    return;
  }
#endif
  // y^T = V x^T (with the bias as a column), then transposed into y.
  Tensor yt = Tensor::empty({v.rows, x.size(0)}, x.dtype(), dev);
  block_gemm(v, x.t().contiguous(), yt);
  const Tensor out = b.defined() ? kernels::binary(BinaryOp::add, yt.t(), b) : yt.t();
  y.copy_(relu ? kernels::unary(UnaryOp::relu, out) : out);
}

BlockListIndex transposed_blocks(const BlockListIndex& v) {
  PIT_CHECK(v.t_offsets.defined() && v.t_rows.defined() && v.t_pos.defined(),
            "transposed_blocks: the index has no transposed lists (t_offsets, t_rows, t_pos); detect it with them "
            "or take it from a compact layout");
  const int64_t b = v.block, listed = v.entries >= 0 ? v.entries : read_count(v);  // the lists may be at capacity
  BlockListIndex t;
  t.offsets = v.t_offsets;
  t.col = v.t_rows.slice(0, 0, listed);
  t.rows = v.cols;
  t.cols = v.rows;
  t.block = b;
  t.entries = listed;
  t.values = listed == 0 ? Tensor::empty({0, b, b}, v.values.dtype(), v.values.device())
                         : kernels::index_select(v.values.view({-1, b, b}), 0, v.t_pos.slice(0, 0, listed)).transpose(1, 2).contiguous();
  return t;
}

void block_linear_dx(const Tensor& dy_in, const BlockListIndex& v, Tensor& dx) {
  check_block_linear(dy_in, v, dx, true, "block_linear_dx");
  const Tensor dy = dy_in.contiguous();
  if (dx.numel() == 0) return;
  if (v.rows == 0) {  // no outputs: nothing flows back
    dx.zero_();
    return;
  }
#if PIT_HAS_CUDA_PIT_GEMM
  const Device dev = dy.device();
  if (dev.is_cuda() && v.t_pos.defined() && cuda::block_linear_takes(dy, v)) {
    cuda::block_linear_dx(dy, v, dx, current_stream(dev));
    return;
  }
#endif
  block_linear(dy, transposed_blocks(v), dx);
}

bool relu_bits_take(const Tensor& x, const BlockListIndex& v) {
#if PIT_HAS_CUDA_PIT_GEMM
  return x.defined() && x.device().is_cuda() && x.dim() == 2 && x.is_contiguous() && x.size(1) == v.cols &&
         v.rows % 8 == 0 && cuda::block_linear_takes(x, v);
#else
  (void)x;
  (void)v;
  return false;
#endif
}

bool relu_bits_pair_takes(const Tensor& x, const BlockListIndex& v, const BlockListIndex& p) {
#if PIT_HAS_CUDA_PIT_GEMM
  return relu_bits_take(x, v) && p.cols == v.rows && p.rows % 8 == 0 && cuda::block_values_take(p) &&
         p.values.dtype() == v.values.dtype() && p.t_offsets.defined() && p.t_rows.defined() && p.t_pos.defined();
#else
  (void)x;
  (void)v;
  (void)p;
  return false;
#endif
}

Tensor block_linear_relu_bits(const Tensor& x, const BlockListIndex& v, Tensor& y, const Tensor& bias) {
  const char* op = "block_linear_relu_bits";
  check_block_linear(x, v, y, false, op);
  PIT_CHECK(relu_bits_take(x, v), op, ": CUDA, f16/bf16, contiguous 16-byte aligned x, 64 x 64 blocks and a multiple "
            "of 8 outputs only (got ", v.rows, "); check relu_bits_take first, else block_linear with relu");
  if (bias.defined()) {
    check_operand(bias, op, "bias", x.device());
    check_same_dtype(bias, x, op, "bias", "x");
    PIT_CHECK(bias.dim() == 1 && bias.size(0) == v.rows && bias.is_contiguous(), op, ": bias must be a contiguous [",
              v.rows, "], got ", shape_of(bias));
  }
  PIT_CHECK(reinterpret_cast<uintptr_t>(y.data_ptr()) % 16 == 0, op, ": y must start 16-byte aligned (its rows are "
            "written in 16-byte units)");
  Tensor mask = Tensor::empty({x.size(0), v.rows / 8}, DType::u8, x.device());
#if PIT_HAS_CUDA_PIT_GEMM
  cuda::block_linear_relu_bits(x, v, y, bias, mask, current_stream(x.device()));
#endif
  return mask;
}

Tensor block_linear_dx_relu_bits(const Tensor& dy_in, const BlockListIndex& p, const Tensor& mask, Tensor& dx) {
  const char* op = "block_linear_dx_relu_bits";
  check_block_linear(dy_in, p, dx, true, op);
  const Tensor dy = dy_in.contiguous();
  PIT_CHECK(mask.defined() && mask.dtype() == DType::u8 && mask.device() == dy.device() && mask.is_contiguous() &&
                mask.shape() == Shape({dy.size(0), p.cols / 8}) && p.cols % 8 == 0,
            op, ": the mask must be block_linear_relu_bits' [", dy.size(0), ", ", p.cols / 8, "] u8 on ",
            dy.device().str(), " (", p.cols, " inputs, a multiple of 8)");
  PIT_CHECK(reinterpret_cast<uintptr_t>(dx.data_ptr()) % 16 == 0, op, ": dx must start 16-byte aligned (its rows are "
            "written in 16-byte units)");
#if PIT_HAS_CUDA_PIT_GEMM
  PIT_CHECK(dy.device().is_cuda() && cuda::block_linear_dx_takes(dy, p), op, ": CUDA, f16/bf16, 16-byte aligned dy "
            "and 64 x 64 blocks with their transposed lists only");
  Tensor part = Tensor::empty({cuda::block_linear_part_rows(dy.size(0)), p.cols}, DType::f32, dy.device());
  cuda::block_linear_dx_relu_bits(dy, p, mask, dx, part, current_stream(dy.device()));
  return kernels::sum(part, {0});
#else
  PIT_THROW(op, ": needs CUDA (check relu_bits_take first)");
#endif
}

void condense_gemm_tn(const KListIndex& a, const Tensor& g_in, Tensor& db, Write write) {
  tile_tn_checks({a.offsets, a.k, a.values, a.rows, a.cols, a.block_rows, 1, a.entries}, g_in, db, "condense_gemm_tn");
  if (empty_tn(g_in, db, write)) return;
  const Tensor g = g_in.contiguous();
  PIT_PIT_GEMM_CALL(g.device(), condense_gemm_tn, a, g, db, write);
}

void block_gemm_tn(const BlockListIndex& a, const Tensor& g_in, Tensor& db, Write write) {
  tile_tn_checks({a.offsets, a.col, a.values, a.rows, a.cols, a.block, a.block, a.entries}, g_in, db, "block_gemm_tn");
  if (empty_tn(g_in, db, write)) return;
  const Tensor g = g_in.contiguous();
  PIT_PIT_GEMM_CALL(g.device(), block_gemm_tn, a, g, db, write);
}

void sampled_gemm(const Tensor& a_in, const Tensor& b_in, KListIndex& out, bool a_trans, bool b_trans) {
  sampled_checks(a_in, b_in, {out.offsets, out.k, out.values, out.rows, out.cols, out.block_rows, 1, out.entries}, a_trans,
                 b_trans, "sampled_gemm");
  if (sampled_of_nothing(a_in, a_trans, out.values)) return;
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  PIT_PIT_GEMM_CALL(a.device(), sampled_gemm, a, b, out, a_trans, b_trans);
}

void sampled_gemm(const Tensor& a_in, const Tensor& b_in, BlockListIndex& out, bool a_trans, bool b_trans) {
  sampled_checks(a_in, b_in, {out.offsets, out.col, out.values, out.rows, out.cols, out.block, out.block, out.entries}, a_trans,
                 b_trans, "sampled_gemm");
  if (sampled_of_nothing(a_in, a_trans, out.values)) return;
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  PIT_PIT_GEMM_CALL(a.device(), sampled_gemm, a, b, out, a_trans, b_trans);
}

}  // namespace pit::sparse
