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

absl::StatusOr<GymState> ApplyLookup(const GymState& state) {
  const std::vector<std::string>& items = state.items;
  auto key = std::find(items.begin(), items.end(), state.query);
  if (state.query.empty() || key == items.end() || key + 1 == items.end()) {
    return Outside(Skill::kLookup, state, "a query key that occurs before another item");
  }
  return WithItems(state, {*(key + 1)});
}

absl::StatusOr<GymState> ApplySpan(const GymState& state) {
  const std::vector<std::string>& items = state.items;
  auto open = std::find(items.begin(), items.end(), "(");
  auto close = std::find(items.begin(), items.end(), ")");
  if (open == items.end() || close == items.end() || close < open ||
      std::count(items.begin(), items.end(), "(") != 1 ||
      std::count(items.begin(), items.end(), ")") != 1) {
    return Outside(Skill::kSpan, state, "exactly one ( followed by one )");
  }
  return WithItems(state, std::vector<std::string>(open + 1, close));
}

absl::StatusOr<GymState> ApplyFilter(const GymState& state) {
  std::optional<WordClass> wanted = WordClassFromName(state.query);
  if (!wanted) return Outside(Skill::kFilter, state, "a query naming a word class");
  std::vector<std::string> kept;
  for (const std::string& item : state.items) {
    if (ClassOf(item) == wanted) kept.push_back(item);
  }
  return WithItems(state, std::move(kept));
}

GymState ApplySort(const GymState& state) {
  std::vector<std::string> sorted = state.items;
  if (AsNumbers(state.items)) {
    std::stable_sort(sorted.begin(), sorted.end(), [](const std::string& a, const std::string& b) {
      return *AsNumber(a) < *AsNumber(b);
    });
  } else {
    std::sort(sorted.begin(), sorted.end());
  }
  return WithItems(state, std::move(sorted));
}

GymState ApplyDedupe(const GymState& state) {
  std::set<std::string> seen;
  std::vector<std::string> kept;
  for (const std::string& item : state.items) {
    if (seen.insert(item).second) kept.push_back(item);
  }
  return WithItems(state, std::move(kept));
}

absl::StatusOr<GymState> ApplyTranslate(const GymState& state) {
  std::vector<std::string> translated;
  for (const std::string& item : state.items) {
    std::optional<std::string> foreign = Translate(item);
    if (!foreign) return Outside(Skill::kTranslate, state, "lexicon words only");
    translated.push_back(*foreign);
  }
  return WithItems(state, std::move(translated));
}

absl::StatusOr<GymState> ApplyIncrement(const GymState& state) {
  std::optional<std::vector<int64_t>> numbers = AsNumbers(state.items);
  if (!numbers) return Outside(Skill::kIncrement, state, "numbers only");
  std::vector<std::string> incremented;
  for (int64_t number : *numbers) incremented.push_back(absl::StrCat(number + 1));
  return WithItems(state, std::move(incremented));
}

// kSum or kMax: one fold over the numbers.
absl::StatusOr<GymState> ApplySumOrMax(Skill skill, const GymState& state) {
  std::optional<std::vector<int64_t>> numbers = AsNumbers(state.items);
  if (!numbers || numbers->empty()) return Outside(skill, state, "one or more numbers");
  int64_t result = skill == Skill::kSum ? 0 : numbers->front();
  for (int64_t number : *numbers) {
    result = skill == Skill::kSum ? result + number : std::max(result, number);
  }
  return WithItems(state, {absl::StrCat(result)});
}

absl::StatusOr<GymState> ApplyParity(const GymState& state) {
  std::optional<std::vector<int64_t>> numbers = AsNumbers(state.items);
  if (!numbers || numbers->size() != 1) return Outside(Skill::kParity, state, "exactly one number");
  return WithItems(state, {numbers->front() % 2 == 0 ? "even" : "odd"});
}

absl::StatusOr<GymState> ApplyCompare(const GymState& state) {
  std::optional<std::vector<int64_t>> numbers = AsNumbers(state.items);
  if (!numbers || numbers->size() < 2) {
    return Outside(Skill::kCompare, state, "two or more numbers");
  }
  const int64_t first = numbers->front(), last = numbers->back();
  return WithItems(state, {first > last ? "greater" : first < last ? "smaller" : "equal"});
}

GymState ApplyPolarity(const GymState& state) {
  int balance = 0;
  for (const std::string& item : state.items) {
    std::optional<WordClass> word_class = ClassOf(item);
    if (word_class == WordClass::kPositive) ++balance;
    if (word_class == WordClass::kNegative) --balance;
  }
  return WithItems(state, {balance > 0 ? "positive" : balance < 0 ? "negative" : "neutral"});
}

absl::StatusOr<GymState> ApplyRotate(const GymState& state) {
  if (state.items.empty()) return Outside(Skill::kRotate, state, "at least one item");
  std::vector<std::string> rotated(state.items.begin() + 1, state.items.end());
  rotated.push_back(state.items.front());
  return WithItems(state, std::move(rotated));
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
    case Skill::kLookup: return ApplyLookup(state);
    case Skill::kSpan: return ApplySpan(state);
    case Skill::kFilter: return ApplyFilter(state);
    case Skill::kFirst:
    case Skill::kLast:
      if (items.empty()) return Outside(skill, state, "at least one item");
      return WithItems(state, {skill == Skill::kFirst ? items.front() : items.back()});
    case Skill::kReverse:
      return WithItems(state, std::vector<std::string>(items.rbegin(), items.rend()));
    case Skill::kSort: return ApplySort(state);
    case Skill::kDedupe: return ApplyDedupe(state);
    case Skill::kTranslate: return ApplyTranslate(state);
    case Skill::kIncrement: return ApplyIncrement(state);
    case Skill::kCount: return WithItems(state, {absl::StrCat(items.size())});
    case Skill::kSum:
    case Skill::kMax: return ApplySumOrMax(skill, state);
    case Skill::kParity: return ApplyParity(state);
    case Skill::kCompare: return ApplyCompare(state);
    case Skill::kPolarity: return ApplyPolarity(state);
    case Skill::kRotate: return ApplyRotate(state);
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
