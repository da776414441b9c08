#pragma once
// "Did you mean ...?" for misspelt config keys, enum values and command-line options.
#include <string>
#include <string_view>
#include <vector>

namespace pit::train {

// Edit distance with adjacent transpositions counted as one edit ("d_modle" -> "d_model" is 1),
// since swapped letters are the most common typo.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, or "" when none is close enough to be a plausible typo.
// Case is ignored first: "LR" suggests "lr".
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

// "a, b, c": the candidates as one line, for "allowed: ..." lists.
std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");

}  // namespace pit::train
