#include "trainer/data/token_loader.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "trainer/data/formats.h"

namespace pit::data {
namespace {

// fn(const T* tokens) for the type the tokens are held in (u8 or i32).
template <typename Fn>
void with_tokens(const Tensor& tokens, Fn&& fn) {
  if (tokens.dtype() == DType::u8) fn(tokens.data<uint8_t>());
  else fn(tokens.data<int32_t>());
}

}  // namespace

TokenLoader::Contents TokenLoader::load(const std::string& path, const LoaderOptions& options) {
  PIT_CHECK(options.seq_len > 0, "TokenLoader(", path, "): seq_len must be > 0, got ",
            options.seq_len);
  PIT_CHECK(options.batch_size > 0, "TokenLoader(", path, "): batch_size must be > 0, got ",
            options.batch_size);
  io::File file = open_data_file(path);
  if (!file.is_dataset("tokens"))
    bad_data_file(path, "no dataset 'tokens' (is it a token stream file?)");
  const io::DatasetInfo info = file.info("tokens");
  if (info.type != "uint8" && info.type != "uint16" && info.type != "int32")
    bad_data_file(path, "dataset 'tokens' stores " + info.type +
                            "; a token stream needs uint8, uint16 or int32");
  if (info.shape.size() != 1)
    bad_data_file(path, "dataset 'tokens' has shape " + shape_str(info.shape) +
                            "; a token stream is 1-D");
  if (!file.has_attr("vocab_size")) bad_data_file(path, "no attribute 'vocab_size'");

  Contents out;
  out.vocab_size = file.attr_int("vocab_size");
  if (out.vocab_size <= 0)
    bad_data_file(path, "vocab_size is " + std::to_string(out.vocab_size) + "; it must be > 0");
  // Held as stored where pit has the type (uint8: a byte-level corpus takes a quarter of the
  // memory it would as i32), else as i32, which every accepted type fits in.
  out.tokens = file.read("tokens", info.type == "uint8" ? DType::u8 : DType::i32);
  const int64_t n = out.tokens.numel();
  with_tokens(out.tokens, [&](const auto* t) {
    for (int64_t i = 0; i < n; ++i)
      if (static_cast<int64_t>(t[i]) < 0 || static_cast<int64_t>(t[i]) >= out.vocab_size)
        bad_data_file(path, "token " + std::to_string(i) + " is " + std::to_string(static_cast<int64_t>(t[i])) +
                                ", outside [0, vocab_size = " + std::to_string(out.vocab_size) + ")");
  });

  const int64_t window = options.seq_len + 1;
  const int64_t windows = n / window;
  const bool eval = options.mode == LoaderMode::eval;
  const int64_t needed = eval ? 1 : options.batch_size;
  if (windows < needed)
    PIT_THROW("data file ", path, " holds ", n, " tokens: ", windows,
              " window(s) of seq_len + 1 = ", window, " tokens, fewer than ",
              eval ? "one" : "one batch of ", eval ? "" : std::to_string(options.batch_size),
              ". Use a smaller batch_size or seq_len, or a bigger file (scripts/get_data.sh "
              "makes data/brown/)");
  return out;
}

TokenLoader::TokenLoader(const std::string& path, const LoaderOptions& options)
    : TokenLoader(path, options, load(path, options)) {}

TokenLoader::TokenLoader(const std::string& path, const LoaderOptions& options, Contents contents)
    : Loader(path, contents.tokens.numel() / (options.seq_len + 1), options),
      tokens_(std::move(contents.tokens)),
      vocab_size_(contents.vocab_size),
      seq_len_(options.seq_len) {}

Batch TokenLoader::make_batch(const std::vector<int64_t>& windows) const {
  const auto b = static_cast<int64_t>(windows.size());
  Batch batch{Tensor::empty({b, seq_len_}, DType::i64), Tensor::empty({b, seq_len_}, DType::i64)};
  int64_t* inputs = batch.inputs.data<int64_t>();
  int64_t* targets = batch.targets.data<int64_t>();
  with_tokens(tokens_, [&](const auto* tokens) {
    for (int64_t r = 0; r < b; ++r) {
      const auto* w = tokens + windows[static_cast<size_t>(r)] * (seq_len_ + 1);
      std::copy(w, w + seq_len_, inputs + r * seq_len_);
      std::copy(w + 1, w + 1 + seq_len_, targets + r * seq_len_);
    }
  });
  return batch;
}

}  // namespace pit::data
