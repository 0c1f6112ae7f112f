#include "data/gym/lexicon.h"

#include <map>

#include <glog/logging.h>

namespace taskmoe::gym {
namespace {

struct ClassWords {
  WordClass word_class;
  const char* name;
  std::vector<std::string> words;
};

// Short, distinct English words (no word in two classes), twelve per class.
const std::vector<ClassWords>& Classes() {
  static const auto* classes = new std::vector<ClassWords>{
      {WordClass::kAnimal, "animal",
       {"cat", "dog", "fox", "owl", "bee", "cow", "pig", "rat", "bat", "eel", "yak", "ant"}},
      {WordClass::kColor, "color",
       {"red", "blue", "green", "pink", "gray", "gold", "teal", "cyan", "navy", "rose", "jade",
        "plum"}},
      {WordClass::kFruit, "fruit",
       {"apple", "pear", "kiwi", "lime", "fig", "date", "grape", "melon", "peach", "mango",
        "cherry", "lemon"}},
      {WordClass::kTool, "tool",
       {"saw", "axe", "drill", "hammer", "wrench", "chisel", "rake", "spade", "pliers", "ladder",
        "brush", "shovel"}},
      {WordClass::kPositive, "positive",
       {"good", "happy", "kind", "bright", "calm", "brave", "warm", "fresh", "nice", "great",
        "lovely", "sweet"}},
      {WordClass::kNegative, "negative",
       {"bad", "sad", "cruel", "dark", "angry", "weak", "cold", "stale", "rude", "awful", "ugly",
        "bitter"}},
  };
  return *classes;
}

// Pseudo-words, one per lexicon word in class order; `Translate` pairs them by position.
const std::vector<std::string>& Foreign() {
  static const auto* words = new std::vector<std::string>{
      "zabu", "kemo", "tirsa", "vonel", "pado", "gusk", "mirel", "sofa", "larun", "bexi", "quom",
      "dravi", "nelo", "fesk", "olum", "rinta", "kabe", "sulo", "wemi", "tozar", "hisp", "yalo",
      "gedu", "pomra", "vusi", "lekta", "marno", "zife", "dolep", "kirsu", "bano", "tesh", "ruvo",
      "nimpa", "selk", "jorbu", "fanu", "wisk", "glomi", "tevra", "cusap", "holdi", "prenu",
      "vaske", "ombi", "keltu", "sarpo", "zunel", "mebi", "ralto", "dusva", "pirk", "lonu", "gavet",
      "tusko", "nefra", "bolim", "yurda", "hekso", "fimbu", "ostel", "karpi", "wunde", "zelmo",
      "tabri", "musko", "driva", "quenu", "solbe", "vimra", "pulsi", "nokta"};
  return *words;
}

struct Index {
  std::map<std::string, WordClass, std::less<>> class_of;
  std::map<std::string, std::string, std::less<>> translation;
};

const Index& GetIndex() {
  static const Index* index = [] {
    auto* built = new Index;
    size_t position = 0;
    for (const ClassWords& entry : Classes()) {
      for (const std::string& word : entry.words) {
        CHECK(built->class_of.emplace(word, entry.word_class).second) << "duplicate word " << word;
        CHECK_LT(position, Foreign().size());
        built->translation.emplace(word, Foreign()[position++]);
      }
    }
    CHECK_EQ(position, Foreign().size()) << "one foreign word per lexicon word";
    return built;
  }();
  return *index;
}

}  // namespace

const std::vector<WordClass>& NounClasses() {
  static const auto* classes = new std::vector<WordClass>{
      WordClass::kAnimal, WordClass::kColor, WordClass::kFruit, WordClass::kTool};
  return *classes;
}

absl::string_view WordClassName(WordClass word_class) {
  for (const ClassWords& entry : Classes()) {
    if (entry.word_class == word_class) return entry.name;
  }
  LOG(FATAL) << "unknown word class " << static_cast<int>(word_class);
}

std::optional<WordClass> WordClassFromName(absl::string_view name) {
  for (const ClassWords& entry : Classes()) {
    if (name == entry.name) return entry.word_class;
  }
  return std::nullopt;
}

const std::vector<std::string>& WordsOf(WordClass word_class) {
  for (const ClassWords& entry : Classes()) {
    if (entry.word_class == word_class) return entry.words;
  }
  LOG(FATAL) << "unknown word class " << static_cast<int>(word_class);
}

std::optional<WordClass> ClassOf(absl::string_view word) {
  const auto& class_of = GetIndex().class_of;
  auto it = class_of.find(word);
  if (it == class_of.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Translate(absl::string_view word) {
  const auto& translation = GetIndex().translation;
  auto it = translation.find(word);
  if (it == translation.end()) return std::nullopt;
  return it->second;
}

const std::vector<std::string>& ForeignWords() { return Foreign(); }

}  // namespace taskmoe::gym
