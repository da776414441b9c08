#pragma once
// Batches of sequences from a token stream file (trainer/data/formats.h).
//
// The stream is cut into non-overlapping windows of T + 1 tokens: window w holds tokens
// [w (T + 1), (w + 1)(T + 1)); its first T tokens are the inputs and its last T the targets
// (the inputs shifted by one). The tokens after the last whole window are not used.
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/loader.h"

namespace pit::data {

class TokenLoader final : public Loader {
 public:
  // Reads the whole file into memory (bytes stay bytes; uint16 and int32 tokens take 4 bytes each).
  // A missing dataset or attribute, a wrong type or rank, a token out of
  // range, or a file too short for one batch is an error naming the file and the fix.
  TokenLoader(const std::string& path, const LoaderOptions& options);

  int64_t vocab_size() const { return vocab_size_; }
  int64_t num_tokens() const { return tokens_.numel(); }
  int64_t seq_len() const { return seq_len_; }

 private:
  struct Contents {
    Tensor tokens;  // [N]: u8 where stored as uint8, else i32
    int64_t vocab_size = 0;
  };
  static Contents load(const std::string& path, const LoaderOptions& options);
  TokenLoader(const std::string& path, const LoaderOptions& options, Contents contents);

  Batch make_batch(const std::vector<int64_t>& windows) const override;

  Tensor tokens_;
  int64_t vocab_size_;
  int64_t seq_len_;
};

}  // namespace pit::data
