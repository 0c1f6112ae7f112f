#ifndef TASKMOE_DATA_GYM_LEXICON_H_
#define TASKMOE_DATA_GYM_LEXICON_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace taskmoe::gym {

// The fixed synthetic lexicon every gym text is drawn from, so that a small BPE
// vocabulary covers the whole gym. Words belong to exactly one class; nouns
// (animal, color, fruit, tool) are the classes `filter` selects by name, and the
// adjectives (positive, negative) carry the polarity that `polarity` counts.
enum class WordClass { kAnimal, kColor, kFruit, kTool, kPositive, kNegative };

// The classes a `filter` query may name, in a fixed order.
const std::vector<WordClass>& NounClasses();

// The name used in inputs ("animal", "color", ...).
absl::string_view WordClassName(WordClass word_class);
std::optional<WordClass> WordClassFromName(absl::string_view name);

// The words of one class, in a fixed order.
const std::vector<std::string>& WordsOf(WordClass word_class);

// The class of a lexicon word; nullopt for anything else (numbers, foreign words).
std::optional<WordClass> ClassOf(absl::string_view word);

// The word's fixed counterpart in the gym's pseudo-language; nullopt for words outside
// the lexicon. The map is a bijection onto ForeignWords().
std::optional<std::string> Translate(absl::string_view word);
const std::vector<std::string>& ForeignWords();

}  // namespace taskmoe::gym

#endif  // TASKMOE_DATA_GYM_LEXICON_H_
