#include "data/gym/skills.h"

#include <algorithm>
#include <optional>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "data/gym/lexicon.h"
#include "moe/base/status_macros.h"
#include <glog/logging.h>

namespace taskmoe::gym {
namespace {

constexpr absl::string_view kQuerySeparator = " | ";

struct SkillInfo {
  Skill skill;
  const char* name;
  const char* description;
};

const std::vector<SkillInfo>& SkillTable() {
  static const auto* table = new std::vector<SkillInfo>{
      {Skill::kLookup, "lookup", "the item right after the first occurrence of the query key"},
      {Skill::kSpan, "span", "copy the items between ( and )"},
      {Skill::kFilter, "filter", "keep the words whose lexicon class the query names"},
      {Skill::kFirst, "first", "the first item"},
      {Skill::kLast, "last", "the last item"},
      {Skill::kReverse, "reverse", "the items in reverse order"},
      {Skill::kSort, "sort", "ascending order: numeric for numbers, else by bytes"},
      {Skill::kDedupe, "dedupe", "drop repeated items, keeping first occurrences"},
      {Skill::kTranslate, "translate", "map each word through the fixed lexicon"},
      {Skill::kIncrement, "increment", "add one to each number"},
      {Skill::kCount, "count", "the number of items"},
      {Skill::kSum, "sum", "the sum of the numbers"},
      {Skill::kMax, "max", "the largest number"},
      {Skill::kParity, "parity", "even or odd, of a single number"},
      {Skill::kCompare, "compare", "first number against last: greater, smaller or equal"},
      {Skill::kPolarity, "polarity",
       "positive minus negative words: positive, negative or neutral"},
      {Skill::kRotate, "rotate", "move the first item to the end"},
  };
  return *table;
}

const SkillInfo& InfoOf(Skill skill) {
  for (const SkillInfo& info : SkillTable()) {
    if (info.skill == skill) return info;
  }
  LOG(FATAL) << "unknown skill " << static_cast<int>(skill);
}

absl::Status Outside(Skill skill, const GymState& state, absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat("skill '", SkillName(skill), "' expects ",
                                                 expected, "; got input '",
                                                 FormatGymInput(state), "'"));
}

std::optional<int64_t> AsNumber(const std::string& item) {
  if (item.empty() || !std::all_of(item.begin(), item.end(), [](char c) {
        return c >= '0' && c <= '9';
      })) {
    return std::nullopt;
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(item, &value)) return std::nullopt;
  return value;
}

// All items as numbers, or nullopt if any item is not a non-negative integer.
std::optional<std::vector<int64_t>> AsNumbers(const std::vector<std::string>& items) {
  std::vector<int64_t> numbers;
  for (const std::string& item : items) {
    std::optional<int64_t> number = AsNumber(item);
    if (!number) return std::nullopt;
    numbers.push_back(*number);
  }
  return numbers;
}

GymState WithItems(const GymState& state, std::vector<std::string> items) {
  return GymState{std::move(items), state.query};
}

}  // namespace

const std::vector<Skill>& AllSkills() {
  static const auto* skills = [] {
    auto* all = new std::vector<Skill>;
    for (const SkillInfo& info : SkillTable()) all->push_back(info.skill);
    return all;
  }();
  return *skills;
}

absl::string_view SkillName(Skill skill) { return InfoOf(skill).name; }

absl::string_view SkillDescription(Skill skill) { return InfoOf(skill).description; }

absl::StatusOr<Skill> SkillFromName(absl::string_view name) {
  for (const SkillInfo& info : SkillTable()) {
    if (name == info.name) return info.skill;
  }
  std::vector<std::string> known;
  for (const SkillInfo& info : SkillTable()) known.push_back(info.name);
  return absl::InvalidArgumentError(absl::StrCat("unknown gym skill '", name,
                                                 "'; known: ", absl::StrJoin(known, ", ")));
}

absl::StatusOr<GymState> ApplySkill(Skill skill, const GymState& state) {
  const std::vector<std::string>& items = state.items;
  switch (skill) {
    case Skill::kLookup: {
      auto key = std::find(items.begin(), items.end(), state.query);
      if (state.query.empty() || key == items.end() || key + 1 == items.end()) {
        return Outside(skill, state, "a query key that occurs before another item");
      }
      return WithItems(state, {*(key + 1)});
    }
    case Skill::kSpan: {
      auto open = std::find(items.begin(), items.end(), "(");
      auto close = std::find(items.begin(), items.end(), ")");
      if (open == items.end() || close == items.end() || close < open ||
          std::count(items.begin(), items.end(), "(") != 1 ||
          std::count(items.begin(), items.end(), ")") != 1) {
        return Outside(skill, state, "exactly one ( followed by one )");
      }
      return WithItems(state, std::vector<std::string>(open + 1, close));
    }
    case Skill::kFilter: {
      std::optional<WordClass> wanted = WordClassFromName(state.query);
      if (!wanted) return Outside(skill, state, "a query naming a word class");
      std::vector<std::string> kept;
      for (const std::string& item : items) {
        if (ClassOf(item) == wanted) kept.push_back(item);
      }
      return WithItems(state, std::move(kept));
    }
    case Skill::kFirst:
    case Skill::kLast:
      if (items.empty()) return Outside(skill, state, "at least one item");
      return WithItems(state, {skill == Skill::kFirst ? items.front() : items.back()});
    case Skill::kReverse:
      return WithItems(state, std::vector<std::string>(items.rbegin(), items.rend()));
    case Skill::kSort: {
      std::vector<std::string> sorted = items;
      if (AsNumbers(items)) {
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const std::string& a, const std::string& b) {
                           return *AsNumber(a) < *AsNumber(b);
                         });
      } else {
        std::sort(sorted.begin(), sorted.end());
      }
      return WithItems(state, std::move(sorted));
    }
    case Skill::kDedupe: {
      std::set<std::string> seen;
      std::vector<std::string> kept;
      for (const std::string& item : items) {
        if (seen.insert(item).second) kept.push_back(item);
      }
      return WithItems(state, std::move(kept));
    }
    case Skill::kTranslate: {
      std::vector<std::string> translated;
      for (const std::string& item : items) {
        std::optional<std::string> foreign = Translate(item);
        if (!foreign) return Outside(skill, state, "lexicon words only");
        translated.push_back(*foreign);
      }
      return WithItems(state, std::move(translated));
    }
    case Skill::kIncrement: {
      std::optional<std::vector<int64_t>> numbers = AsNumbers(items);
      if (!numbers) return Outside(skill, state, "numbers only");
      std::vector<std::string> incremented;
      for (int64_t number : *numbers) incremented.push_back(absl::StrCat(number + 1));
      return WithItems(state, std::move(incremented));
    }
    case Skill::kCount:
      return WithItems(state, {absl::StrCat(items.size())});
    case Skill::kSum:
    case Skill::kMax: {
      std::optional<std::vector<int64_t>> numbers = AsNumbers(items);
      if (!numbers || numbers->empty()) return Outside(skill, state, "one or more numbers");
      int64_t result = skill == Skill::kSum ? 0 : numbers->front();
      for (int64_t number : *numbers) {
        result = skill == Skill::kSum ? result + number : std::max(result, number);
      }
      return WithItems(state, {absl::StrCat(result)});
    }
    case Skill::kParity: {
      std::optional<std::vector<int64_t>> numbers = AsNumbers(items);
      if (!numbers || numbers->size() != 1) return Outside(skill, state, "exactly one number");
      return WithItems(state, {numbers->front() % 2 == 0 ? "even" : "odd"});
    }
    case Skill::kCompare: {
      std::optional<std::vector<int64_t>> numbers = AsNumbers(items);
      if (!numbers || numbers->size() < 2) return Outside(skill, state, "two or more numbers");
      const int64_t first = numbers->front(), last = numbers->back();
      return WithItems(state, {first > last ? "greater" : first < last ? "smaller" : "equal"});
    }
    case Skill::kPolarity: {
      int balance = 0;
      for (const std::string& item : items) {
        std::optional<WordClass> word_class = ClassOf(item);
        if (word_class == WordClass::kPositive) ++balance;
        if (word_class == WordClass::kNegative) --balance;
      }
      return WithItems(state,
                       {balance > 0 ? "positive" : balance < 0 ? "negative" : "neutral"});
    }
    case Skill::kRotate: {
      if (items.empty()) return Outside(skill, state, "at least one item");
      std::vector<std::string> rotated(items.begin() + 1, items.end());
      rotated.push_back(items.front());
      return WithItems(state, std::move(rotated));
    }
  }
  LOG(FATAL) << "unhandled skill " << static_cast<int>(skill);
}

absl::StatusOr<GymState> ApplySkills(const std::vector<Skill>& skills, GymState state) {
  for (Skill skill : skills) {
    TASKMOE_ASSIGN_OR_RETURN(state, ApplySkill(skill, state));
  }
  return state;
}

std::string FormatGymInput(const GymState& state) {
  std::string text = absl::StrJoin(state.items, " ");
  if (!state.query.empty()) absl::StrAppend(&text, kQuerySeparator, state.query);
  return text;
}

absl::StatusOr<GymState> ParseGymInput(absl::string_view text) {
  GymState state;
  absl::string_view items_text = text;
  const size_t separator = text.rfind(kQuerySeparator);
  if (separator != absl::string_view::npos) {
    items_text = text.substr(0, separator);
    state.query = std::string(text.substr(separator + kQuerySeparator.size()));
    if (state.query.empty() || state.query.find(' ') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("gym input '", text, "': expected one query word after '|'"));
    }
  }
  state.items = absl::StrSplit(items_text, ' ', absl::SkipEmpty());
  if (state.items.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("gym input '", text, "' has no items"));
  }
  return state;
}

std::string FormatGymOutput(const GymState& state) { return absl::StrJoin(state.items, " "); }

}  // namespace taskmoe::gym
